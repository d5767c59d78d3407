import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { DLQ_HEADERS } from "../../streams/dlq.js";
import { dlqTopicName } from "../../streams/topology.js";
import { freePort } from "../support/api.js";
import { chainFixture, inquiries, produce, readCommitted, startWorker, stopChild, type ChainFixture } from "../support/topics.js";
import { exitOf, metricValue, unlessExits, until } from "../support/worker-process.js";

/** Committed offsets of the fixture's processor group on its input, per partition. */
async function committedOffsets(fixture: ChainFixture): Promise<number[]> {
  const admin = fixture.kafka.admin();
  await admin.connect();
  try {
    const [topic] = await admin.fetchOffsets({ groupId: fixture.topology.processors[0]!.name, topics: [fixture.input] });
    return topic!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Math.max(0, Number(p.offset)));
  } finally {
    await admin.disconnect();
  }
}

describe("runtime failures", () => {
  const workers: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) await stopChild(w, "SIGKILL");
  });
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("sends a record that fails transiently on every attempt to the DLQ after MAX_ATTEMPTS, counting the retries; the others pass once", async () => {
    const fixture = await chainFixture("retries", inject("endpoints"));
    const processor = fixture.topology.processors[0]!.name;
    const maxAttempts = 4;
    const port = await freePort();
    const worker = startWorker(fixture, {
      WORKER_FAIL_TRANSIENT: "fail-on-every-attempt",
      SWITCHBOARD_MAX_ATTEMPTS: String(maxAttempts),
      SWITCHBOARD_RETRY_BACKOFF_MS: "20",
      SWITCHBOARD_METRICS_PORT: String(port),
    });
    workers.push(worker);
    const values = inquiries(9, "retries");
    const failing = { ...values[4]!, body: `${values[4]!.body} fail-on-every-attempt` };
    values[4] = failing;
    await produce(fixture, values);

    // Read side by side: each read waits a few seconds for anything more to arrive.
    const [dlq, output] = await unlessExits(
      worker,
      Promise.all([readCommitted(fixture.kafka, dlqTopicName(fixture.input), 1), readCommitted(fixture.kafka, fixture.output, values.length - 1)]),
    );
    expect(dlq.map((r) => r.key)).toEqual([failing.inquiry_id]);
    const [record] = dlq;
    expect(record!.headers[DLQ_HEADERS.errorClass]).toBe("Error");
    expect(record!.headers[DLQ_HEADERS.errorMessage]).toBe("simulated transient failure");
    expect(record!.headers[DLQ_HEADERS.attempts]).toBe(String(maxAttempts));
    expect(record!.headers[DLQ_HEADERS.processor]).toBe(processor);
    expect(record!.headers[DLQ_HEADERS.sourceTopic]).toBe(fixture.input);
    expect(record!.value!.equals(fixture.codec.encode(fixture.input, failing))).toBe(true);

    expect(output.map((r) => r.key).sort()).toEqual(values.filter((v) => v !== failing).map((v) => v.inquiry_id).sort());

    // The DLQ record committed after its last attempt, so the counters are final by now.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect({
      retries: metricValue(metrics, "switchboard_retries_total", { processor }),
      errors: metricValue(metrics, "switchboard_errors_total", { processor, error_class: "Error" }),
      dlq: metricValue(metrics, "switchboard_dlq_records_total", { processor, error_class: "Error" }),
    }).toEqual({ retries: maxAttempts - 1, errors: maxAttempts, dlq: 1 });
  });

  it("sends a record over MAX_RECORD_BYTES to the DLQ as OversizedRecordError with its bytes intact; the others pass once", async () => {
    const fixture = await chainFixture("oversized", inject("endpoints"));
    const maxBytes = 4096;
    const worker = startWorker(fixture, { SWITCHBOARD_MAX_RECORD_BYTES: String(maxBytes) });
    workers.push(worker);
    const values = inquiries(6, "oversized");
    const big = { ...values[2]!, body: `${values[2]!.body} ${"x".repeat(2 * maxBytes)}` };
    values[2] = big;
    // The test means something only if the others fit and the big one does not.
    const sizes = values.map((v) => fixture.codec.encode(fixture.input, v).length);
    expect(sizes.filter((s) => s > maxBytes)).toEqual([sizes[2]]);
    await produce(fixture, values);

    const [dlq, output] = await unlessExits(
      worker,
      Promise.all([readCommitted(fixture.kafka, dlqTopicName(fixture.input), 1), readCommitted(fixture.kafka, fixture.output, values.length - 1)]),
    );
    expect(dlq.map((r) => r.key)).toEqual([big.inquiry_id]);
    const [record] = dlq;
    expect(record!.headers[DLQ_HEADERS.errorClass]).toBe("OversizedRecordError");
    expect(record!.headers[DLQ_HEADERS.attempts]).toBe("1");
    expect(record!.value!.equals(fixture.codec.encode(fixture.input, big))).toBe(true);

    expect(output.map((r) => r.key).sort()).toEqual(values.filter((v) => v !== big).map((v) => v.inquiry_id).sort());
  });

  it("on SIGTERM finishes the records in flight, commits them with their offsets and exits 0; a new worker re-emits none of them", async () => {
    const fixture = await chainFixture("sigterm", inject("endpoints"));
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-sigterm-"));
    dirs.push(dir);
    const started = path.join(dir, "started");
    const shutdownTimeoutMs = 20_000;
    const values = inquiries(600, "sigterm");
    // One record takes seconds: once it has started, the signal certainly finds it in flight.
    const slow = { ...values[150]!, body: `${values[150]!.body} slow-record` };
    values[150] = slow;
    await produce(fixture, values);
    const worker = startWorker(fixture, {
      WORKER_CONCURRENCY: "4",
      WORKER_DELAY_MS: "40",
      WORKER_SLOW_MARKER: "slow-record",
      WORKER_SLOW_MS: "3000",
      WORKER_STARTED_FILE: started,
      SWITCHBOARD_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
    });
    workers.push(worker);
    const startedIds = () => (existsSync(started) ? readFileSync(started, "utf8").split("\n").filter(Boolean) : []);
    await unlessExits(
      worker,
      until("the slow record to start", () => (startedIds().includes(slow.inquiry_id) ? true : undefined)),
    );

    worker.kill("SIGTERM");
    // Exit code 1 is the shutdown timer firing; 0 is a shutdown that finished.
    expect(await exitOf(worker, shutdownTimeoutMs + 10_000)).toEqual({ code: 0, signal: null });

    const begun = startedIds();
    expect(new Set(begun).size).toBe(begun.length);
    expect(begun.length).toBeLessThan(values.length); // it was stopped mid-stream
    const output = await readCommitted(fixture.kafka, fixture.output, begun.length);
    expect(output.map((r) => r.key).sort()).toEqual([...begun].sort());
    // The offsets went with the outputs: one input consumed per output, partition by partition.
    const committed = await committedOffsets(fixture);
    const perPartition = [0, 1, 2].map((p) => output.filter((r) => r.partition === p).length);
    expect(committed).toEqual(perPartition);

    const successor = startWorker(fixture);
    workers.push(successor);
    const all = await unlessExits(successor, readCommitted(fixture.kafka, fixture.output, values.length));
    const keys = all.map((r) => r.key);
    expect({ total: keys.length, distinct: new Set(keys).size }).toEqual({ total: values.length, distinct: values.length });
  });
});
