import { Group, type GroupOptions } from "./group.js";
import type { GroupConfig } from "./rulefile.js";

/**
 * Replay (vmalert's -replay.timeFrom/-replay.timeTo): evaluates every group over past data at
 * the timestamps it would have used, in order, writing recording-rule results and ALERTS series
 * to the sink (backfilling). Alerts keep their state from step to step; nothing is notified.
 */
export interface ReplayProgress {
  readonly group: string;
  readonly evaluations: number;
  readonly errors: number;
}

export async function replay(
  configs: readonly GroupConfig[],
  opts: Omit<GroupOptions, "notifier" | "restore">,
  fromMs: number,
  toMs: number,
  onGroup?: (p: ReplayProgress) => void,
): Promise<ReplayProgress[]> {
  if (!(toMs > fromMs)) throw new Error(`-replay.timeTo must be after -replay.timeFrom`);
  const out: ReplayProgress[] = [];
  for (const c of configs) {
    const g = new Group(c, opts);
    let ts = g.evalTimestamp(fromMs);
    if (ts < fromMs) ts += g.intervalMs;
    let evaluations = 0;
    let errors = 0;
    for (; ts <= toMs; ts += g.intervalMs) {
      await g.evalOnce(ts);
      evaluations++;
      for (const r of g.rules) if (r.health === "err") errors++;
    }
    const p = { group: c.name, evaluations, errors };
    onGroup?.(p);
    out.push(p);
  }
  return out;
}
