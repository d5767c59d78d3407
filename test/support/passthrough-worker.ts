import { existsSync } from "node:fs";
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
 */
const name = process.env.WORKER_NAME ?? "test-passthrough";
const passthrough = passthroughTopology(name, process.env.WORKER_INPUT!, process.env.WORKER_OUTPUT!);
const { topology } = passthrough;
const processor = { ...passthrough.processor, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 1) };
const delayMs = Number(process.env.WORKER_DELAY_MS ?? 0);
const marker = process.env.WORKER_MARKER;
const config = loadConfig();

await hostProcessor(
  topology,
  processor,
  {
    process: async (input) => {
      if (delayMs > 0) await sleep(Math.random() * delayMs);
      const inquiry = input.value as InquiryReceived;
      if (inquiry.body.trim() === "") throw new InvalidInputError("empty body");
      if (marker && existsSync(marker) && inquiry.body.includes("reject-while-marker")) {
        throw new InvalidInputError("rejected while the marker file exists");
      }
      return [{ topic: processor.outputs[0]!, value: inquiry }];
    },
  },
  config,
  resolveEndpoints(config),
  createLogger(config, name),
);
