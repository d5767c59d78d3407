import { existsSync } from "node:fs";
import net from "node:net";
import type { ServiceDefinition, StackPorts } from "../service.js";

const SERVER = "/usr/bin/redis-server";

export function redisUrl(ports: StackPorts): string {
  return `redis://127.0.0.1:${ports.redis}`;
}

/** Sends PING and expects +PONG: the real protocol, not just an open port. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

export const redis: ServiceDefinition = {
  name: "redis",
  dependsOn: [],
  startTimeoutSeconds: 30,
  port: (ports) => ports.redis,

  async install() {
    if (!existsSync(SERVER)) throw new Error(`Redis is not installed (${SERVER} missing): run \`apt-get install -y redis-server\``);
  },

  async prepare() {},

  async launch(ctx) {
    return {
      command: SERVER,
      args: [
        "--port",
        String(ctx.ports.redis),
        "--bind",
        "127.0.0.1",
        "--dir",
        ctx.paths.data,
        // Idempotency keys must survive a restart: append-only file, fsync every second. No RDB
        // snapshots beside it: each forks and writes every key, a core for seconds under load.
        "--appendonly",
        "yes",
        "--save",
        "",
        "--daemonize",
        "no",
      ],
    };
  },

  healthy: (ctx) => ping(ctx.ports.redis),
};
