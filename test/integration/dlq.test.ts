import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import avro from "avsc";
import { afterAll, describe, expect, it , inject } from "vitest";
import type { ChildProcess } from "node:child_process";
import { registerSchema, type RegistryEndpoint } from "../../schemas/registry.js";
import { DLQ_HEADERS, REPLAYED_FROM_HEADER } from "../../streams/dlq.js";
import { listDlq, replayDlq } from "../../streams/dlq-tools.js";
import { dlqTopicName } from "../../streams/topology.js";
import { inquiries, chainFixture, produce, produceRaw, quietLog, readCommitted, startWorker, stopChild } from "../support/topics.js";

/** Registers an unrelated schema under a side subject and frames a record with its id. */
async function recordWithForeignSchema(registry: RegistryEndpoint, topic: string): Promise<Buffer> {
  const schema = { type: "record", name: "Unrelated", fields: [{ name: "x", type: "int" }] };
  const { id } = await registerSchema(registry, { topic: `${topic}.foreign`, schema });
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, avro.Type.forSchema(schema as avro.Schema).toBuffer({ x: 7 })]);
}

describe("dead-letter queue", () => {
  const workers: ChildProcess[] = [];
  afterAll(async () => {
    for (const w of workers) await stopChild(w, "SIGKILL");
  });

  it("sends poison bytes, an unknown schema id, a schema mismatch and invalid input to the DLQ with reasons, and keeps going", async () => {
    const fixture = await chainFixture("dlq", inject("endpoints"));
    workers.push(startWorker(fixture));
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 0x02]);
    const [good1, empty, good2] = inquiries(3, "dlq");
    await produce(fixture, [good1!]);
    await produceRaw(fixture, [
      { key: "poison", value: Buffer.from("definitely not avro") },
      { key: "unknown-schema", value: unknownId },
      { key: "mismatch", value: await recordWithForeignSchema(fixture.endpoints, fixture.input) },
      { key: "truncated", value: fixture.codec.encode(fixture.input, good1).subarray(0, 12) },
    ]);
    await produce(fixture, [{ ...empty!, body: "  " }, good2!]);

    const dlq = await readCommitted(fixture.kafka, dlqTopicName(fixture.input), 5);
    const reasons = Object.fromEntries(dlq.map((r) => [r.key, r.headers[DLQ_HEADERS.errorClass]]));
    expect(reasons).toEqual({
      poison: "PoisonRecordError",
      "unknown-schema": "UnknownSchemaError",
      mismatch: "SchemaMismatchError",
      truncated: "PoisonRecordError",
      [empty!.inquiry_id]: "InvalidInputError",
    });
    const poison = dlq.find((r) => r.key === "poison")!;
    expect(poison.value?.toString()).toBe("definitely not avro");
    expect(poison.headers[DLQ_HEADERS.processor]).toBe(fixture.topology.processors[0]!.name);
    expect(poison.headers[DLQ_HEADERS.attempts]).toBe("1");
    expect(poison.headers[DLQ_HEADERS.errorMessage]).toMatch(/not a schema-registry framed record/);

    const output = await readCommitted(fixture.kafka, fixture.output, 2);
    expect(output.map((r) => r.key).sort()).toEqual([good1!.inquiry_id, good2!.inquiry_id].sort());
  });

  it("replays DLQ records once the cause is fixed, each exactly once", async () => {
    const fixture = await chainFixture("replay", inject("endpoints"));
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-replay-"));
    const marker = path.join(dir, "broken");
    writeFileSync(marker, "");
    const worker = startWorker(fixture, { WORKER_MARKER: marker });
    workers.push(worker);
    const values = inquiries(4, "replay").map((v, i) => (i % 2 === 0 ? { ...v, body: `${v.body} reject-while-marker` } : v));
    await produce(fixture, values);
    expect(await readCommitted(fixture.kafka, dlqTopicName(fixture.input), 2)).toHaveLength(2);
    const listed = await listDlq(fixture.kafka, fixture.input);
    expect(listed.map((r) => r.errorClass)).toEqual(["InvalidInputError", "InvalidInputError"]);

    rmSync(marker);
    expect(await replayDlq(fixture.kafka, fixture.input, quietLog)).toBe(2);
    expect(await replayDlq(fixture.kafka, fixture.input, quietLog)).toBe(0);

    const output = await readCommitted(fixture.kafka, fixture.output, 4);
    expect(output.map((r) => r.key).sort()).toEqual(values.map((v) => v.inquiry_id).sort());
    const input = await readCommitted(fixture.kafka, fixture.input, 6);
    expect(input.filter((r) => r.headers[REPLAYED_FROM_HEADER]?.startsWith(dlqTopicName(fixture.input)))).toHaveLength(2);
    rmSync(dir, { recursive: true, force: true });
  });
});
