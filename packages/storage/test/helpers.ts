import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeMetricName, normalizeLabels, RowsBatchWriter, type Tenant } from "@strata/core";
import { mergeSeriesBlocks, Storage, type StorageOptions } from "@strata/storage";

export function tmpDir(prefix = "strata-storage-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function nameBytes(tenant: Tenant, labels: Record<string, string>): Uint8Array {
  return encodeMetricName({ tenant, labels: normalizeLabels(Object.entries(labels).map(([name, value]) => ({ name, value }))) });
}

export interface Row {
  tenant: Tenant;
  labels: Record<string, string>;
  t: number;
  v: number;
}

export function batchOf(rows: readonly Row[]): Uint8Array {
  const w = new RowsBatchWriter();
  for (const r of rows) w.add(nameBytes(r.tenant, r.labels), r.t, r.v);
  return w.finish();
}

/** Opens a Storage (real IndexDB) with background timers slowed so tests drive flushes. */
export async function openTestStorage(dir: string, opts: StorageOptions = {}): Promise<Storage> {
  return Storage.open(dir, {
    flushIntervalMs: 3_600_000,
    diskFlushIntervalMs: 3_600_000,
    walFsyncIntervalMs: 0,
    ...opts,
  });
}

/** All samples of the matching series, decoded: "labels" → [t, v][] (values as float bits strings for NaN). */
export function dump(
  s: Storage,
  tenant: Tenant,
  matchers: Parameters<Storage["search"]>[1],
  minT: number,
  maxT: number,
  opts: Parameters<Storage["search"]>[4] = {},
): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  const c = s.search(tenant, matchers, minT, maxT, opts);
  while (c.next()) {
    const { metricName, blocks } = c.at();
    const { timestamps, values } = mergeSeriesBlocks(blocks, c.minT, c.maxT, s.dedupIntervalMs);
    if (timestamps.length === 0) continue;
    const key = Buffer.from(metricName).toString("hex");
    out.set(key, Array.from(timestamps, (t, i) => [t, values[i]!] as [number, number]));
  }
  return out;
}
