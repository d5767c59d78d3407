import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** /healthz (200 while the processor is consuming, 503 otherwise) and /metrics for Prometheus. */
export async function startOpsServer(port: number, registry: Registry, healthy: () => boolean): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    if (req.url === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ok ? "ok" : "unavailable" }));
    } else if (req.url === "/metrics") {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        },
        (error: Error) => {
          res.writeHead(500);
          res.end(error.message);
        },
      );
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(new Error(`cannot listen on port ${port} for /metrics: ${error.message}`)));
    server.listen(port, "0.0.0.0", resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
