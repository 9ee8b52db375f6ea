import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { BadDataError } from "./errors.js";

/**
 * Memory a process may use for its caches and buffers, from `-memory.allowedPercent` (of the
 * machine's memory or the cgroup's limit, whichever is lower) or `-memory.allowedBytes` (when
 * > 0, it wins), as VictoriaMetrics' lib/memory does. Each cache takes a fixed share of it
 * unless its own flag sets a cap (docs/limits.md, "Memory").
 */
export function allowedMemoryBytes(percent: number, bytes: number, available: number = systemMemoryBytes()): number {
  if (!(percent >= 1 && percent <= 200)) {
    throw new BadDataError(`-memory.allowedPercent=${percent}: want 1 to 200`, "STRATA_INVALID_FLAG");
  }
  if (bytes < 0) throw new BadDataError(`-memory.allowedBytes=${bytes}: want 0 (use -memory.allowedPercent) or more`, "STRATA_INVALID_FLAG");
  if (bytes > 0) return bytes;
  return Math.floor((available * percent) / 100);
}

/** The machine's memory, or the cgroup's memory limit when one is set and lower. */
export function systemMemoryBytes(): number {
  const total = totalmem();
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8").trim();
    } catch {
      continue;
    }
    const n = Number(text);
    if (Number.isFinite(n) && n > 0 && n < total) return n;
  }
  return total;
}

/**
 * The cap of one cache: its own flag when set (> 0), else `share` of the allowed memory, and
 * never below `floor` (a cache smaller than that is not worth having).
 */
export function cacheCap(flagBytes: number, allowed: number, share: number, floor = 1 << 20): number {
  if (flagBytes > 0) return flagBytes;
  return Math.max(floor, Math.floor(allowed * share));
}
