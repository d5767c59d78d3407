import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { prettyLogs, prettyStream } from "../../config/log.js";

describe("logs", () => {
  it("are pretty on a terminal outside CI, JSON otherwise, unless LOG_FORMAT says", () => {
    expect(prettyLogs("auto", true, {})).toBe(true);
    expect(prettyLogs("auto", false, {})).toBe(false);
    expect(prettyLogs("auto", true, { CI: "true" })).toBe(false);
    expect(prettyLogs("auto", true, { CI: "false" })).toBe(true);
    expect(prettyLogs("json", true, {})).toBe(false);
    expect(prettyLogs("pretty", false, { CI: "true" })).toBe(true);
  });

  it("print one line per event on a terminal: time, level, message, the error's message and the fields", () => {
    let output = "";
    const sink = new Writable({
      write(chunk, _encoding, done) {
        output += String(chunk);
        done();
      },
    });
    const log = pino({ base: null }, prettyStream(sink, false));
    log.info({ service: "kafka", port: 9092 }, "already running");
    log.error(
      { err: new Error("connection refused"), kafka: { broker: "127.0.0.1:9092", stack: "Error\n  at x\n  at y" } },
      "cannot connect",
    );
    const lines = output.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: already running \{"service":"kafka","port":9092\}$/);
    expect(lines[1]).toMatch(/ERROR: cannot connect: connection refused \{"kafka":\{"broker":"127.0.0.1:9092"\}\}$/);
  });
});
