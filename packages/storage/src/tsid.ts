/**
 * The TSID: a series' sort key in parts and in the index, and its fixed 24-byte form
 * (DESIGN.md §4; docs/format/index.md).
 */

/** Sort key of a series. All fields uint32 except metricID (safe integer, monotonic, never reused). */
export interface TSID {
  readonly accountID: number;
  readonly projectID: number;
  /** uint32 hash of `__name__` (keeps one metric's series together). */
  readonly metricGroupID: number;
  /** uint32 hash of job+instance. */
  readonly jobInstanceID: number;
  readonly metricID: number;
}

/** Bytes of the fixed big-endian form written by encodeTSID. */
export const TSID_SIZE = 24;

export function compareTSID(a: TSID, b: TSID): number {
  if (a.accountID !== b.accountID) return a.accountID < b.accountID ? -1 : 1;
  if (a.projectID !== b.projectID) return a.projectID < b.projectID ? -1 : 1;
  if (a.metricGroupID !== b.metricGroupID) return a.metricGroupID < b.metricGroupID ? -1 : 1;
  if (a.jobInstanceID !== b.jobInstanceID) return a.jobInstanceID < b.jobInstanceID ? -1 : 1;
  if (a.metricID !== b.metricID) return a.metricID < b.metricID ? -1 : 1;
  return 0;
}

function put32(buf: Uint8Array, p: number, n: number): void {
  buf[p] = n >>> 24;
  buf[p + 1] = (n >>> 16) & 0xff;
  buf[p + 2] = (n >>> 8) & 0xff;
  buf[p + 3] = n & 0xff;
}

function get32(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/**
 * Writes `accountID u32 | projectID u32 | metricGroupID u32 | jobInstanceID u32 | metricID u64`
 * (big-endian, so byte order equals compareTSID order) at buf[pos, pos+24).
 */
export function encodeTSID(t: TSID, buf: Uint8Array, pos: number): void {
  put32(buf, pos, t.accountID);
  put32(buf, pos + 4, t.projectID);
  put32(buf, pos + 8, t.metricGroupID);
  put32(buf, pos + 12, t.jobInstanceID);
  put32(buf, pos + 16, Math.floor(t.metricID / 0x1_0000_0000));
  put32(buf, pos + 20, t.metricID >>> 0);
}

/** A new 24-byte buffer holding the encoded TSID. */
export function tsidBytes(t: TSID): Uint8Array {
  const b = new Uint8Array(TSID_SIZE);
  encodeTSID(t, b, 0);
  return b;
}

/** metricID of the TSID encoded at buf[pos, pos+24), without decoding the rest. */
export function tsidMetricID(buf: Uint8Array, pos: number): number {
  return get32(buf, pos + 16) * 0x1_0000_0000 + get32(buf, pos + 20);
}

export function decodeTSID(buf: Uint8Array, pos: number): TSID {
  return {
    accountID: get32(buf, pos),
    projectID: get32(buf, pos + 4),
    metricGroupID: get32(buf, pos + 8),
    jobInstanceID: get32(buf, pos + 12),
    metricID: get32(buf, pos + 16) * 0x1_0000_0000 + get32(buf, pos + 20),
  };
}
