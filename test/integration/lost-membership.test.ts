import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { Registry } from "prom-client";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createCheckpoint, type CheckpointPart } from "../../streams/checkpoint.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import { freePort } from "../support/api.js";
import { chainFixture, inquiries, quietLog, readCommitted, startWorker, stopChild, type ChainFixture } from "../support/topics.js";
import { metricValue, unlessExits, until, waitHealthy } from "../support/worker-process.js";

const PARTITIONS = 6;
const STALL_PARTITION = 0;
const SLICE = 100;
const STALL_ID = "stall-0";

interface Instance {
  readonly id: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly startedFile: string;
}

async function recordsOut(instance: Instance, fixture: ChainFixture): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${instance.port}/metrics`).catch(() => undefined);
  if (!response?.ok) return 0;
  return metricValue(await response.text(), "switchboard_records_out_total", { topic: fixture.output });
}

const started = (instance: Instance, id: string): boolean => {
  try {
    return readFileSync(instance.startedFile, "utf8").split("\n").includes(id);
  } catch {
    return false;
  }
};

describe("lost group membership", () => {
  const children: ChildProcess[] = [];
  let dir: string | undefined;
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill("SIGCONT");
      await stopChild(child, "SIGKILL");
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("an instance frozen past its session timeout while its partitions move commits none of what the new owner redoes", async () => {
    const fixture = await chainFixture("zombie", inject("endpoints"), 1, PARTITIONS);
    dir = mkdtempSync(join(tmpdir(), "switchboard-zombie-"));
    const start = async (id: string): Promise<Instance> => {
      const port = await freePort();
      const startedFile = join(dir!, `${id}.started`);
      const child = startWorker(fixture, {
        SWITCHBOARD_INSTANCE_ID: id,
        SWITCHBOARD_METRICS_PORT: String(port),
        SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
        WORKER_STARTED_FILE: startedFile,
        WORKER_SLOW_MARKER: "stall-here",
        WORKER_SLOW_MS: "3000",
      });
      children.push(child);
      return { id, child, port, startedFile };
    };
    const instances = await Promise.all(["zombie-a", "zombie-b"].map(start));
    await Promise.all(instances.map((w) => waitHealthy(w.child, w.port)));

    // Records flow on every partition, until told to stop. One that takes 3 s ends a slice, and its
    // partition gets nothing more until its owner is frozen while processing it: as the last
    // record of its batch (a record after it would be preceded by a heartbeat that notices the lost
    // session), so that the transaction of that batch is still to come when it runs again.
    const [stall] = inquiries(1).map((v) => ({ ...v, inquiry_id: STALL_ID, body: `${v.body} stall-here` }));
    let produced = 0;
    let loading = true;
    let stalling = false;
    let stallOffset: bigint | undefined;
    let quiet = false;
    const partitionOf = (i: number) => (quiet ? 1 + (i % (PARTITIONS - 1)) : i % PARTITIONS);
    const producer = fixture.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const load = (async () => {
      while (loading) {
        const values = inquiries(SLICE).map((v, i) => ({ ...v, inquiry_id: `zombie-${produced + i}` }));
        const messages = values.map((v, i) => ({ key: v.inquiry_id, partition: partitionOf(i), value: fixture.codec.encode(fixture.input, v) }));
        const withStall = stalling;
        stalling = false;
        quiet ||= withStall;
        if (withStall) messages.push({ key: STALL_ID, partition: STALL_PARTITION, value: fixture.codec.encode(fixture.input, stall!) });
        const written = await producer.send({ topic: fixture.input, messages });
        if (withStall) {
          const base = BigInt(written.find((r) => r.partition === STALL_PARTITION)!.baseOffset!);
          stallOffset = base + BigInt(messages.filter((m) => m.partition === STALL_PARTITION).length) - 1n;
        }
        produced += SLICE;
        await sleep(100);
      }
    })();
    const working = (instance: Instance) =>
      unlessExits(instance.child, until(`${instance.id} to commit output`, async () => ((await recordsOut(instance, fixture)) > 0 ? true : undefined)));
    await Promise.all(instances.map(working));

    stalling = true;
    const frozen = await until("an instance to start the stalling record", () => instances.find((w) => started(w, STALL_ID)));
    frozen.child.kill("SIGSTOP");
    quiet = false;
    const survivor = instances.find((w) => w !== frozen)!;

    // Its session expires; the survivor takes its partitions, redoes the stalling record from the
    // last committed offset and commits it.
    await unlessExits(survivor.child, until("the survivor to redo the stalling record", () => (started(survivor, STALL_ID) ? true : undefined), 120_000));
    // The frozen one commits nothing, so a committed offset past the record is the survivor's.
    const past = stallOffset! + 1n;
    const admin = fixture.kafka.admin();
    await admin.connect();
    const stallCommitted = async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: fixture.topology.processors[0]!.name, topics: [fixture.input] });
      const offset = offsets?.partitions.find((p) => p.partition === STALL_PARTITION)?.offset;
      return offset !== undefined && offset !== "-1" && BigInt(offset) >= past ? true : undefined;
    };
    await unlessExits(survivor.child, until("the survivor to commit the stalling record", stallCommitted, 60_000));
    await admin.disconnect();

    // Thawed, it finishes what it was doing: that must not commit again. It rejoins and works on.
    frozen.child.kill("SIGCONT");
    const before = await recordsOut(frozen, fixture);
    await unlessExits(
      frozen.child,
      until("the thawed instance to rejoin and commit output", async () => ((await recordsOut(frozen, fixture)) > before ? true : undefined), 120_000),
    );
    const target = produced + 5 * SLICE;
    await until("more load after the thaw", () => (produced >= target ? true : undefined));
    loading = false;
    await load;
    await producer.disconnect();
    expect(instances.filter((w) => w.child.exitCode !== null || w.child.signalCode !== null).map((w) => w.id)).toEqual([]);

    const total = produced + 1;
    const output = await readCommitted(fixture.kafka, fixture.output, total, { timeoutMs: 120_000, settleMs: 3_000 });
    const counts = new Map<string, number>();
    for (const r of output) counts.set(r.key!, (counts.get(r.key!) ?? 0) + 1);
    const expected = [STALL_ID, ...Array.from({ length: produced }, (_, i) => `zombie-${i}`)];
    const missing = expected.filter((key) => !counts.has(key)).length;
    const duplicated = [...counts.values()].filter((n) => n > 1).length;
    console.info(`lost membership: ${total} records, ${output.length} written, ${duplicated} duplicated, ${missing} missing`);
    expect({ total: output.length, missing, duplicated }).toEqual({ total, missing: 0, duplicated: 0 });
  }, 300_000);

  it("a checkpoint commits while the group answers for the member (rebalance under way included), and aborts when it does not or answered too long ago", async () => {
    const fixture = await chainFixture("membership", inject("endpoints"));
    const groupId = `${fixture.name}-checkpoint`;
    const producer = fixture.kafka.producer({ transactionalId: `${groupId}.test`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const SESSION_MS = 6_000;
    let heardAt: number | undefined;
    const checkpoint = createCheckpoint({
      name: groupId,
      groupId,
      producer: () => producer,
      groupHeardAt: () => heardAt,
      sessionTimeoutMs: SESSION_MS,
      heartbeatIntervalMs: 600,
      flushSinks: async () => undefined,
      metrics: createRuntimeMetrics(new Registry()),
      log: quietLog,
    });
    const kafkaError = (type: string) => Object.assign(new Error(type), { type });
    // Each case commits one record to partition 0 of the input, with its offset.
    let asked = 0;
    const cases: { name: string; heartbeat: () => Promise<void>; heardAgoMs: number | undefined }[] = [
      { name: "answered", heartbeat: async () => undefined, heardAgoMs: 0 },
      { name: "rebalancing", heartbeat: async () => Promise.reject(kafkaError("REBALANCE_IN_PROGRESS")), heardAgoMs: 0 },
      { name: "unknown-member", heartbeat: async () => Promise.reject(kafkaError("UNKNOWN_MEMBER_ID")), heardAgoMs: 0 },
      { name: "illegal-generation", heartbeat: async () => Promise.reject(kafkaError("ILLEGAL_GENERATION")), heardAgoMs: 0 },
      { name: "answered-before-a-stall", heartbeat: async () => undefined, heardAgoMs: SESSION_MS },
      // Once the interval has passed, kafkajs asks anew: a fresh answer.
      { name: "answered-again-after-a-stall", heartbeat: async () => void (++asked === 2 && (heardAt = Date.now())), heardAgoMs: SESSION_MS },
      { name: "never-answered", heartbeat: async () => undefined, heardAgoMs: undefined },
    ];
    const outcomes: Record<string, string> = {};
    for (const [offset, { name, heartbeat, heardAgoMs }] of cases.entries()) {
      heardAt = heardAgoMs === undefined ? undefined : Date.now() - heardAgoMs;
      const [value] = inquiries(1, name);
      const part: CheckpointPart = {
        topic: fixture.input,
        partition: 0,
        outgoing: [{ topic: fixture.output, message: { key: name, value: fixture.codec.encode(fixture.output, value!) } }],
        lastOffset: String(offset),
        heartbeat,
      };
      outcomes[name] = await checkpoint([part]).then(
        () => "committed",
        (error: Error & { type?: string }) => `aborted (${error.type ?? (/membership is not confirmed/.test(error.message) ? "stale" : error.message)})`,
      );
    }
    await producer.disconnect();
    expect(outcomes).toEqual({
      answered: "committed",
      rebalancing: "committed",
      "unknown-member": "aborted (UNKNOWN_MEMBER_ID)",
      "illegal-generation": "aborted (ILLEGAL_GENERATION)",
      "answered-before-a-stall": "aborted (stale)",
      "answered-again-after-a-stall": "committed",
      "never-answered": "aborted (stale)",
    });
    // What aborted wrote nothing a read_committed reader sees, nor moved the group's offset.
    const output = await readCommitted(fixture.kafka, fixture.output, 3, { timeoutMs: 30_000, settleMs: 2_000 });
    expect(output.map((r) => r.key).sort()).toEqual(["answered", "answered-again-after-a-stall", "rebalancing"]);
    const admin = fixture.kafka.admin();
    await admin.connect();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [fixture.input] });
    await admin.disconnect();
    expect(offsets?.partitions.find((p) => p.partition === 0)?.offset).toBe("6");
  }, 120_000);
});
