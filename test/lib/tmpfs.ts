import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A small tmpfs in a private mount namespace, for disk-full tests: `unshare -m` runs a holder
 * process that mounts the tmpfs and waits on its stdin (it exits with the test process). Nothing
 * is mounted in the test's own namespace; the test reaches the files through
 * `/proc/<holder>/root/<dir>`, and processes run inside the namespace through `nsenter`.
 * Needs root (CI runs as root).
 */
export interface Tmpfs {
  /** The mount point as the test process reaches it (through /proc/<pid>/root). */
  readonly path: string;
  /** The mount point as processes inside the namespace see it. */
  readonly innerPath: string;
  /** argv that runs `cmd args…` inside the namespace (nsenter -t <pid> -m). */
  command(cmd: string, args: readonly string[]): { cmd: string; args: string[] };
  /** Free bytes on the tmpfs now. */
  freeBytes(): number;
  /** Fills the tmpfs with a filler file until at most `leaveBytes` are free. */
  fill(leaveBytes: number): void;
  /** Deletes the filler file (the disk "grows" back). */
  unfill(): void;
  /** Stops the holder (the tmpfs goes with the last process in the namespace). */
  close(): void;
}

const FILLER = ".filler";

/** Why tmpfs tests cannot run here, or undefined when they can. */
export function tmpfsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "tmpfs tests need Linux";
  if (process.getuid?.() !== 0) return "tmpfs tests need root (mount in a private namespace)";
  for (const tool of ["unshare", "nsenter"]) {
    if (spawnSync(tool, ["--version"]).status !== 0) return `tmpfs tests need ${tool} (util-linux)`;
  }
  const probe = spawnSync("unshare", ["-m", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0"', tmpdir()]);
  if (probe.status !== 0) return `cannot mount a tmpfs in a private mount namespace: ${probe.stderr.toString().trim()}`;
  return undefined;
}

export async function mountTmpfs(sizeBytes: number): Promise<Tmpfs> {
  const dir = mkdtempSync(join(tmpdir(), "strata-tmpfs-"));
  const holder: ChildProcess = spawn(
    "unshare",
    ["-m", "--propagation", "private", "sh", "-c", `mount -t tmpfs -o size=${sizeBytes} tmpfs "$0" && echo mounted && exec cat >/dev/null`, dir],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let err = "";
  holder.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("mounted")) resolve();
    });
    holder.once("exit", (code) => reject(new Error(`tmpfs holder exited ${code}: ${err}`)));
    holder.once("error", reject);
  });
  const pid = holder.pid!;
  const path = `/proc/${pid}/root${dir}`;
  const freeBytes = (): number => {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  };
  return {
    path,
    innerPath: dir,
    command: (cmd, args) => ({ cmd: "nsenter", args: ["-t", String(pid), "-m", "--", cmd, ...args] }),
    freeBytes,
    fill(leaveBytes) {
      const fd = openSync(join(path, FILLER), "a");
      try {
        const chunk = Buffer.alloc(64 * 1024, 0x5a);
        for (;;) {
          const want = freeBytes() - leaveBytes;
          if (want <= 0) break;
          try {
            writeSync(fd, chunk, 0, Math.min(chunk.length, want));
          } catch (e) {
            if ((e as { code?: string }).code === "ENOSPC") break;
            throw e;
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    unfill() {
      rmSync(join(path, FILLER), { force: true });
    },
    close() {
      holder.stdin?.end();
      holder.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
