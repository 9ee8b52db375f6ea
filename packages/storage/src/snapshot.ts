import { existsSync, linkSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { BadDataError, NotFoundError } from "@strata/core";
import { DATA_DIR, INDEXDB_DIR, INDEX_BIN, METADATA_JSON, METAINDEX_BIN, PARTS_JSON, SNAPSHOTS_DIR, TIMESTAMPS_BIN, TMP_PREFIX, VALUES_BIN } from "./constants.js";
import { fsyncDir, removeDir, writeFileAtomic } from "./fsutil.js";
import type { Part } from "./part.js";
import type { PartsJson } from "./partition.js";
import type { SeriesIndex } from "./series-index.js";
import type { Table } from "./table.js";

/**
 * Snapshots of a store under `<dir>/snapshots/<name>`: hard links of every on-disk part and of
 * the index's immutable parts, in the layout of a store directory (Storage.open can read one).
 * Names are `YYYYMMDDhhmmss-<seq>`.
 */

/** The name of a snapshot taken at `nowMs`, made unique by `seq`. */
export function snapshotName(nowMs: number, seq: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `${stamp}-${seq.toString(16).padStart(8, "0")}`;
}

/** Links the on-disk parts of `table` and the index into snapshot `name` (the caller flushed first). */
export async function createSnapshot(dir: string, name: string, table: Table, index: SeriesIndex): Promise<void> {
  const root = join(dir, SNAPSHOTS_DIR, name);
  const tmp = join(dir, SNAPSHOTS_DIR, TMP_PREFIX + name);
  mkdirSync(join(tmp, DATA_DIR), { recursive: true });
  const held: Part[] = [];
  try {
    for (const p of table.partitions.values()) {
      const parts = [...p.disk];
      for (const part of parts) {
        part.acquire();
        held.push(part);
      }
      const pdir = join(tmp, DATA_DIR, p.name);
      mkdirSync(pdir);
      for (const part of parts) {
        const dst = join(pdir, part.name);
        mkdirSync(dst);
        for (const f of [METADATA_JSON, TIMESTAMPS_BIN, VALUES_BIN, INDEX_BIN, METAINDEX_BIN]) linkSync(join(part.dir!, f), join(dst, f));
      }
      const pj: PartsJson = { version: 1, parts: parts.map((x) => x.name) };
      writeFileAtomic(pdir, PARTS_JSON, JSON.stringify(pj));
    }
    await index.snapshot(join(tmp, INDEXDB_DIR));
    renameSync(tmp, root);
    fsyncDir(join(dir, SNAPSHOTS_DIR));
  } catch (err) {
    removeDir(tmp);
    throw err;
  } finally {
    for (const part of held) part.release();
  }
}

/** Names of the existing snapshots, oldest first. */
export function listSnapshots(dir: string): string[] {
  const root = join(dir, SNAPSHOTS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((f) => !f.startsWith(TMP_PREFIX))
    .sort();
}

/** Path of a snapshot directory; BadDataError for a name that is not a snapshot name. */
export function snapshotPath(dir: string, name: string): string {
  if (!/^[0-9]{14}-[0-9a-f]+$/.test(name)) throw new BadDataError(`invalid snapshot name ${JSON.stringify(name)}`);
  return join(dir, SNAPSHOTS_DIR, name);
}

/** Deletes a snapshot; NotFoundError when it does not exist. */
export function deleteSnapshot(dir: string, name: string): void {
  const path = snapshotPath(dir, name);
  if (!existsSync(path)) throw new NotFoundError(`snapshot ${JSON.stringify(name)} does not exist`);
  removeDir(path);
}
