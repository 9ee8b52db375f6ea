import type { TSID } from "../tsid.js";

/** A metric name's series as the name → TSID cache holds it. */
export interface NameEntry {
  readonly tsid: TSID;
  /** Last day whose per-day entries are known to exist (-1: none checked yet). */
  day: number;
  /** Created by this process and no per-day entries written yet. */
  fresh: boolean;
}

/** A metricID's series as the metricID → (TSID, name) cache holds it. */
export interface IdEntry {
  readonly tsid: TSID;
  readonly name: Uint8Array;
}
