import { parseArgs } from "node:util";
import type { Config } from "../config/settings.js";
import { table } from "../models/eval/report.js";
import { liveQuality, type QualityReport } from "../quality/live.js";
import { Z_95 } from "../quality/statistics.js";
import { parseWindow, type QualityWindow } from "../quality/window.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { ReportedError } from "./context.js";

export const LIVE_USAGE = `usage: switchboard models --live [--model M] [--window W ...]

Live quality of each production and shadow model version, from the feedback store
(quality/README.md): predictions and labelled ones in the window, measured accuracy with its
95 % Wilson interval and macro-F1 on the labelled, the label-free estimate (mean maximum
calibrated probability) ± its 95 % sampling error, and whether the estimate can be trusted
(calibration checked on the labelled predictions of the same window) or why not.

  --model M    only registry model M (intent, category, sentiment, urgency)
  --window W   15m, 1h, 1d, 7d (the last that long) or a count (1000: the last that many
               predictions); repeat for several; default 1h`;

const DEFAULT_WINDOW = "1h";

const fixed = (value: number, digits = 3) => (Number.isNaN(value) ? "-" : value.toFixed(digits));

/** One line per model version and window. */
export function liveQualityTable(reports: readonly QualityReport[], z = Z_95): string {
  const header = ["model", "stage", "window", "predictions", "labelled", "accuracy [95 % CI]", "macro-F1", "estimated ± 95 %", "estimate"];
  const rows = reports.map((r) => [
    r.version.model,
    r.version.stage,
    r.window.name,
    String(r.predictions),
    String(r.labelled),
    r.measured ? `${fixed(r.measured.accuracy)} [${fixed(r.measured.interval.low)}, ${fixed(r.measured.interval.high)}]` : "-",
    r.measured ? fixed(r.measured.macroF1) : "-",
    r.estimated ? `${fixed(r.estimated.estimate)} ± ${fixed(z * r.estimated.standardError)}` : "-",
    r.calibration.trusted ? "trusted" : `not trusted: ${r.calibration.reason}`,
  ]);
  return table(header, rows);
}

/** `switchboard models --live ...`: `args` are the command's own (after `models`). */
export async function liveModels(args: readonly string[], config: Config): Promise<void> {
  let values: { model?: string | undefined; window?: string[] | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { live: { type: "boolean" }, model: { type: "string" }, window: { type: "string", multiple: true }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ReportedError(`${(error as Error).message}\n\n${LIVE_USAGE}`);
  }
  if (values.help) {
    console.log(LIVE_USAGE);
    return;
  }
  let windows: QualityWindow[];
  try {
    windows = (values.window ?? [DEFAULT_WINDOW]).map(parseWindow);
  } catch (error) {
    throw new ReportedError((error as Error).message);
  }
  const pool = createPool(resolveEndpoints(config), "switchboard-models-live");
  try {
    const reports = await liveQuality(pool, { windows, model: values.model, registrySchema: config.registrySchema });
    if (reports.length === 0) {
      console.log(values.model ? `model ${values.model} has no production or shadow version in the registry` : "no production or shadow model versions in the registry");
      return;
    }
    console.log(liveQualityTable(reports));
  } catch (error) {
    throw new ReportedError((error as Error).message);
  } finally {
    await pool.end();
  }
}
