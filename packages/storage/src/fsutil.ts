import { close, closeSync, fsync, fsyncSync, open, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** fsyncs a directory so that renames/creations inside it are durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncDir on the thread pool. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    open(dir, "r", (err, fd) => {
      if (err !== null) {
        reject(err);
        return;
      }
      fsync(fd, (e) => close(fd, () => (e === null ? resolve() : reject(e))));
    });
  });
}

/** Writes a file atomically: temp file + fsync + rename + fsync of the directory. */
export function writeFileAtomic(dir: string, name: string, data: string | Uint8Array): void {
  const tmp = join(dir, `${name}.tmp`);
  try {
    const fd = openSync(tmp, "w");
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

/**
 * writeFileAtomic with both fsyncs on the thread pool (the event loop keeps serving writes
 * meanwhile). Resolves once the new content is durable under `name`.
 */
export async function writeFileAtomicAsync(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  try {
    const fd = openSync(tmp, "w");
    try {
      writeFileSync(fd, data);
      await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    // The old content stays in place; a half-written temp file must not take disk space.
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, join(dir, name));
  await fsyncDirAsync(dir);
}

export function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function removeDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
