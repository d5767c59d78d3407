import type pg from "pg";
import { REGISTRY_SCHEMA } from "../models/registry.js";
import { DEFAULT_TRUST_POLICY, Z_95, windowQuality, type TrustPolicy, type WindowQuality } from "./statistics.js";
import { DEFAULT_LABEL_SOURCES, liveVersions, readWindow, type LabelSource, type LiveVersion } from "./store.js";
import { parseWindow, type QualityWindow } from "./window.js";

/** Live quality of every served model version over each window: PostgreSQL in, reports out. */

export interface QualityOptions {
  /** Default: the last hour, the last day and the last 1,000 predictions of each version. */
  readonly windows?: readonly QualityWindow[];
  /** Default DEFAULT_TRUST_POLICY: 50 labelled, 3 sampling errors, |gap| 0.15. */
  readonly trust?: TrustPolicy;
  /** Normal quantile of the intervals; default 1.96 (95 %). */
  readonly z?: number;
  /** Resolved labels that count; default agent and outcome (store.ts says why not customer). */
  readonly labelSources?: readonly LabelSource[];
  /** Only this registry model (e.g. "intent"). */
  readonly model?: string;
  readonly registrySchema?: string;
  /** End of every window, ms since the epoch; default now. */
  readonly now?: number;
}

export const DEFAULT_WINDOWS: readonly QualityWindow[] = ["1h", "1d", "1000"].map(parseWindow);

export interface QualityReport extends WindowQuality {
  readonly version: LiveVersion;
  readonly window: QualityWindow;
  readonly from: Date | null;
  readonly to: Date | null;
}

export async function liveQuality(pool: pg.Pool, options: QualityOptions = {}): Promise<QualityReport[]> {
  const now = options.now ?? Date.now();
  const labelSources = options.labelSources ?? DEFAULT_LABEL_SOURCES;
  const versions = await liveVersions(pool, options.model, options.registrySchema ?? REGISTRY_SCHEMA);
  const reports: QualityReport[] = [];
  // One query at a time: this runs beside the stream on a small pool.
  for (const version of versions) {
    for (const window of options.windows ?? DEFAULT_WINDOWS) {
      const rows = await readWindow(pool, version, window, { now, labelSources });
      reports.push({
        version,
        window,
        from: rows.from,
        to: rows.to,
        ...windowQuality(rows.sums, rows.labelled, options.trust ?? DEFAULT_TRUST_POLICY, options.z ?? Z_95),
      });
    }
  }
  return reports;
}
