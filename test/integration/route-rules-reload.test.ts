import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { createRouteMetrics, type RouteMetrics } from "../../processors/route/metrics.js";
import { RulesError } from "../../processors/route/rules-file.js";
import { watchRules, type LiveRules } from "../../processors/route/rules-watch.js";
import { quietLog } from "../support/topics.js";

const DEFAULT = readFileSync(path.join(REPO_ROOT, "config/routing-rules.yaml"), "utf8");
/** The default rules with ORDER inquiries sent to billing instead of orders. */
const ORDERS_TO_BILLING = DEFAULT.replace("  ORDER: orders", "  ORDER: billing");
const BROKEN = DEFAULT.replace("  ORDER: orders", "  ORDER: ordres");

const reloads = async (metrics: RouteMetrics) =>
  Object.fromEntries((await metrics.rulesReloads.get()).values.map((v) => [v.labels.outcome, v.value]));

describe("routing rules reload (a real file in a temporary folder)", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  function rulesFolder(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-rules-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async function watched(file: string, pollMs: number): Promise<{ live: LiveRules; metrics: RouteMetrics }> {
    const metrics = createRouteMetrics();
    const live = await watchRules(file, { log: quietLog, metrics, pollMs, debounceMs: 20 });
    cleanups.push(() => live.close());
    return { live, metrics };
  }

  it("keeps the rules in force when the file breaks, and applies a good file without a restart", async () => {
    const file = path.join(rulesFolder(), "routing-rules.yaml");
    writeFileSync(file, DEFAULT);
    const { live, metrics } = await watched(file, 60_000);
    const original = live.current();
    expect(original.categories.get("order")?.name).toBe("orders");

    writeFileSync(file, BROKEN);
    await vi.waitFor(() => expect(live.lastError()).toBeInstanceOf(RulesError), { timeout: 5_000 });
    expect(live.lastError()!.problems).toEqual([
      {
        line: BROKEN.split("\n").indexOf("  ORDER: ordres") + 1,
        column: 10,
        reason: expect.stringContaining('unknown department "ordres"'),
      },
    ]);
    expect(live.current()).toBe(original);

    writeFileSync(file, ORDERS_TO_BILLING);
    await vi.waitFor(() => expect(live.current().categories.get("order")?.name).toBe("billing"), { timeout: 5_000 });
    expect(live.lastError()).toBeUndefined();
    expect(await reloads(metrics)).toEqual({ refused: 1, applied: 1 });
  });

  it("sees an editor's write-to-temporary-and-rename, and a deleted file keeps the rules in force", async () => {
    const dir = rulesFolder();
    const file = path.join(dir, "routing-rules.yaml");
    writeFileSync(file, DEFAULT);
    const { live } = await watched(file, 60_000);

    writeFileSync(path.join(dir, ".routing-rules.yaml.swp"), ORDERS_TO_BILLING);
    renameSync(path.join(dir, ".routing-rules.yaml.swp"), file);
    await vi.waitFor(() => expect(live.current().categories.get("order")?.name).toBe("billing"), { timeout: 5_000 });

    rmSync(file);
    await vi.waitFor(() => expect(live.lastError()?.problems[0]?.reason).toMatch(/cannot read the file/), {
      timeout: 5_000,
    });
    expect(live.current().categories.get("order")?.name).toBe("billing");
  });

  it("refuses to start on a bad file, naming the file and line", async () => {
    const file = path.join(rulesFolder(), "routing-rules.yaml");
    writeFileSync(file, BROKEN);
    const metrics = createRouteMetrics();
    await expect(watchRules(file, { log: quietLog, metrics })).rejects.toThrow(
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:10: categories\\.ORDER: unknown department "ordres"`,
      ),
    );
  });
});
