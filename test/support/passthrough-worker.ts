import { appendFileSync, existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../config/settings.js";
import { createLogger } from "../../config/log.js";
import { resolveEndpoints } from "../../stack/index.js";
import { InvalidInputError } from "../../streams/errors.js";
import { hostProcessor } from "../../streams/host.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { passthroughTopology } from "./topics.js";

/**
 * A pass-through processor on test-owned topics, run as its own process so tests can SIGKILL it.
 * It refuses an empty body, and a body containing "reject-while-marker" while WORKER_MARKER
 * exists (to test DLQ replay once "the cause is fixed"). WORKER_CONCURRENCY sets the records in
 * flight at once and WORKER_DELAY_MS a random wait per record, so that they finish out of order.
 * For the runtime's failure tests: a body containing WORKER_FAIL_TRANSIENT fails with a plain Error
 * (not a record error, so it is retried) on every attempt; one containing WORKER_SLOW_MARKER takes
 * WORKER_SLOW_MS; WORKER_STARTED_FILE gets each record's inquiry_id as its processing starts; and
 * WORKER_TAG_OUTPUT puts the instance id in a "test.instance" header of each output.
 */
const name = process.env.WORKER_NAME ?? "test-passthrough";
const passthrough = passthroughTopology(name, process.env.WORKER_INPUT!, process.env.WORKER_OUTPUT!);
const { topology } = passthrough;
const processor = { ...passthrough.processor, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 1) };
const delayMs = Number(process.env.WORKER_DELAY_MS ?? 0);
const marker = process.env.WORKER_MARKER;
const failTransient = process.env.WORKER_FAIL_TRANSIENT;
const slowMarker = process.env.WORKER_SLOW_MARKER;
const slowMs = Number(process.env.WORKER_SLOW_MS ?? 0);
const startedFile = process.env.WORKER_STARTED_FILE;
const tagOutput = process.env.WORKER_TAG_OUTPUT !== undefined;
const config = loadConfig();

await hostProcessor(
  topology,
  processor,
  {
    process: async (input) => {
      const inquiry = input.value as InquiryReceived;
      // Synchronous, so the line is on disk before any signal can stop the process.
      if (startedFile) appendFileSync(startedFile, `${inquiry.inquiry_id}\n`);
      if (delayMs > 0) await sleep(Math.random() * delayMs);
      if (slowMarker && inquiry.body.includes(slowMarker)) await sleep(slowMs);
      if (inquiry.body.trim() === "") throw new InvalidInputError("empty body");
      if (marker && existsSync(marker) && inquiry.body.includes("reject-while-marker")) {
        throw new InvalidInputError("rejected while the marker file exists");
      }
      if (failTransient && inquiry.body.includes(failTransient)) throw new Error("simulated transient failure");
      return [{ topic: processor.outputs[0]!, value: inquiry, ...(tagOutput ? { headers: { "test.instance": config.instanceId } } : {}) }];
    },
  },
  config,
  resolveEndpoints(config),
  createLogger(config, name),
);
