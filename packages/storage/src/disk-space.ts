import { statfsSync } from "node:fs";
import { UnavailableError } from "@strata/core";

/** A change of read-only mode, for the operator's log (a StorageEvent). */
export interface ReadOnlyEvent {
  readonly kind: "read_only";
  readonly readOnly: boolean;
  readonly freeBytes: number;
  readonly minFreeBytes: number;
  readonly reason: string;
}

/**
 * Read-only mode of a storage directory by its free disk space (VictoriaMetrics'
 * -storage.minFreeDiskSpaceBytes): `check()` measures the filesystem (statfs: the space an
 * unprivileged writer may use) and turns read-only below the minimum, writable again at or above
 * it; a write failing with ENOSPC turns it read-only at once. A minimum of 0 disables the mode.
 */
export class DiskSpace {
  private ro = false;
  /** Free bytes at the last check (-1 before the first). */
  freeBytes = -1;

  constructor(
    private readonly dir: string,
    readonly minFreeBytes: number,
    private readonly onChange: (e: ReadOnlyEvent) => void,
  ) {}

  get readOnly(): boolean {
    return this.ro;
  }

  check(): void {
    const st = statfsSync(this.dir);
    this.freeBytes = st.bavail * st.bsize;
    const min = this.minFreeBytes;
    if (this.freeBytes < min) this.set(true, `free disk space ${this.freeBytes} bytes is below the minimum of ${min}`);
    else this.set(false, `free disk space ${this.freeBytes} bytes is at least the minimum of ${min}`);
  }

  /** The error addRows throws while read-only (nothing of the batch was written). */
  readOnlyError(): UnavailableError {
    return new UnavailableError(`storage ${this.dir} is read-only: ${this.freeBytes} bytes free, below the minimum of ${this.minFreeBytes}`, "STRATA_READ_ONLY");
  }

  /**
   * Notes a failed write: ENOSPC turns the directory read-only (until a check finds the minimum
   * free again) and becomes UnavailableError STRATA_DISK_FULL naming `what` failed; other
   * errors are returned as they are.
   */
  failed(err: unknown, what: string): unknown {
    if (!isNoSpace(err)) return err;
    const msg = err instanceof Error ? err.message : String(err);
    if (this.minFreeBytes > 0) this.set(true, `${what}: ${msg} (the next free-space check decides when writes resume)`);
    return new UnavailableError(`storage ${this.dir}: ${what} failed: ${msg}`, "STRATA_DISK_FULL", { cause: err });
  }

  private set(readOnly: boolean, reason: string): void {
    if (this.ro === readOnly) return;
    this.ro = readOnly;
    this.onChange({ kind: "read_only", readOnly, freeBytes: this.freeBytes, minFreeBytes: this.minFreeBytes, reason });
  }
}

/** ENOSPC, also as the cause of a wrapping error. */
export function isNoSpace(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === "ENOSPC") return true;
  }
  return false;
}
