import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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

/**
 * A full (mark-compact) garbage collection on demand, or undefined when V8 offers none. Node
 * exposes `gc` only with `--expose-gc`; the flag set at run time installs it in contexts made
 * afterwards, so the function is taken from a new context (the process's own globals stay as
 * they are).
 */
export function fullGc(): (() => void) | undefined {
  setFlagsFromString("--expose-gc");
  const gc: unknown = runInNewContext("gc");
  return typeof gc === "function" ? () => void (gc as () => unknown)() : undefined;
}

/**
 * Runs a full GC once `thresholdBytes` of buffers were dropped since the last one. V8 frees an
 * ArrayBuffer's memory only when a GC finds the buffer dead; one that lived through two
 * scavenges (a storage node's in-memory parts live seconds) waits for the next full GC, which
 * V8 starts on its own only when external memory grew ~64 MiB past the last one — so a node that
 * drops tens of MiB of parts at once held them, dead, on top of the live ones. The owner of
 * such buffers calls `freed(bytes)` when it drops them: the process's peak follows the live
 * bytes, at the cost of one full GC per `thresholdBytes` freed (a few ms for a small heap).
 */
export class GcAfterFreed {
  /** Full GCs run. */
  runs = 0;
  /** Bytes reported freed since the last run. */
  pendingBytes = 0;

  constructor(
    readonly thresholdBytes: number,
    private readonly gc: (() => void) | undefined,
  ) {}

  /** Reports `bytes` of buffers just dropped; runs the GC when the total reached the threshold. */
  freed(bytes: number): void {
    if (this.gc === undefined || this.thresholdBytes <= 0) return;
    this.pendingBytes += bytes;
    if (this.pendingBytes < this.thresholdBytes) return;
    this.pendingBytes = 0;
    this.runs++;
    this.gc();
  }
}
