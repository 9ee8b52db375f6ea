import * as fs from "node:fs";
import * as path from "node:path";
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, crc32 } from "node:zlib";
import { InternalError, TwoGenCache } from "@strata/core";
import { lz4Compress, lz4Decompress } from "@strata/encoding";
import { type Block, BlockBuilder, blockBytes, decodeBlock, decodeBlockV2, lastPrefixLens } from "./block.js";
import { BLOOM_PROBES, Bloom, BloomKeys } from "./bloom.js";
import { ByteBuffer, ByteReader, readU32 } from "../bytes.js";
import {
  BLOOM_BIN,
  BLOOM_MAGIC,
  CODEC_BROTLI,
  CODEC_LZ4,
  CODEC_NONE,
  type BlockCodec,
  PART_FORMAT_V1,
  PART_FORMAT_V2,
  PART_FORMAT_V3,
  PART_FORMAT_VERSION,
  ITEMS_BIN,
  METADATA_JSON,
  METAINDEX_BIN,
  METAINDEX_MAGIC,
} from "./constants.js";
import { fsyncDir } from "../fsutil.js";

let nextUid = 1;
/** The block codecs each part format allows. */
const CODECS_OF: Readonly<Record<number, (c: number) => boolean>> = {
  [PART_FORMAT_V1]: (c) => c === CODEC_NONE || c === CODEC_LZ4,
  [PART_FORMAT_V2]: (c) => c === CODEC_NONE || c === CODEC_BROTLI,
  [PART_FORMAT_V3]: (c) => c === CODEC_NONE || c === CODEC_LZ4 || c === CODEC_BROTLI,
};
/** Payloads shorter than this are stored uncompressed. */
const MIN_COMPRESS = 256;

/**
 * An immutable sorted run of unique items, split into blocks. Either held in memory (recently
 * added items, not durable yet) or a directory on disk (durable, listed in parts.json).
 */
export abstract class Part {
  readonly uid = nextUid++;
  /** Snapshots holding this part, plus one while the table lists it. */
  refs = 1;
  /** Selected by a running flush or merge. */
  busy = false;
  /** Set when the table no longer lists it: its files go when the last ref does. */
  obsolete = false;
  abstract readonly name: string;
  abstract readonly inMemory: boolean;
  abstract readonly itemsCount: number;
  abstract readonly blocksCount: number;
  abstract readonly sizeBytes: number;
  abstract firstItem(i: number): Uint8Array;
  abstract block(i: number): Block;
  /** Reads block i without touching a cache (merges stream whole parts). */
  abstract blockUncached(i: number): Block;
  /** Block i from the cache when it is there, else read without adding it (sparse searches). */
  abstract blockSparse(i: number): Block;
  abstract close(): void;
  /** False when the part surely holds no keyed item with this key (see bloom.ts). */
  abstract mayContainKey(h1: number, h2: number): boolean;
}

export class InMemoryPart extends Part {
  readonly name = "";
  readonly inMemory = true;
  readonly itemsCount: number;
  readonly blocksCount: number;
  readonly sizeBytes: number;
  private readonly firsts: Uint8Array[];

  constructor(
    private readonly blocks: readonly Block[],
    private readonly bloom: Bloom | undefined,
  ) {
    super();
    let items = 0;
    let bytes = 0;
    this.firsts = [];
    for (const b of blocks) {
      items += b.n;
      bytes += blockBytes(b);
      this.firsts.push(b.data.subarray(b.offs[0]!, b.offs[1]!));
    }
    this.itemsCount = items;
    this.blocksCount = blocks.length;
    this.sizeBytes = bytes;
  }

  mayContainKey(h1: number, h2: number): boolean {
    return this.bloom !== undefined && this.bloom.mayContain(h1, h2);
  }

  firstItem(i: number): Uint8Array {
    return this.firsts[i]!;
  }

  block(i: number): Block {
    return this.blocks[i]!;
  }

  blockUncached(i: number): Block {
    return this.blocks[i]!;
  }

  blockSparse(i: number): Block {
    return this.blocks[i]!;
  }

  close(): void {}
}


/** Decoded blocks of file parts by (part, block) key, bounded by bytes (two generations). */
export type BlockCache = TwoGenCache<number, Block>;

/** A BlockCache of `maxBytes`. */
export function newBlockCache(maxBytes: number): BlockCache {
  return new TwoGenCache<number, Block>(maxBytes, (_k, b) => blockBytes(b));
}

interface BlockHeader {
  readonly crc: number;
  readonly offset: number;
  readonly size: number;
  readonly count: number;
  readonly itemsBytes: number;
  readonly codec: number;
}

/**
 * Per item kind (the first byte of an item, as two hex digits): items, and the bytes of
 * items.bin their blocks take (a block's stored size split by the share of its payload each
 * kind's items encode to). Parts written before format 2 have none.
 */
export type KindSizes = Record<string, { items: number; bytes: number }>;

export interface PartMetadata {
  /** PART_FORMAT_V1, V2 or V3: how block payloads are encoded and compressed. */
  readonly formatVersion: number;
  readonly itemsCount: number;
  readonly blocksCount: number;
  readonly itemsBinBytes: number;
  readonly metaindexBytes: number;
  readonly firstItem: string; // hex
  readonly lastItem: string; // hex
  readonly kinds?: KindSizes;
}

function corruptPart(dir: string, msg: string): never {
  throw new InternalError(`mergeset part ${dir}: ${msg}`, "STRATA_CORRUPT_DATA");
}

export class FilePart extends Part {
  readonly inMemory = false;
  readonly itemsCount: number;
  readonly blocksCount: number;
  readonly sizeBytes: number;
  private readonly firsts: Uint8Array[] = [];
  private readonly headers: BlockHeader[] = [];
  private fd: number;
  /** undefined: the part has no bloom.bin (no filter; every key may be present). */
  private bloom: Bloom | undefined;

  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly meta: PartMetadata,
    metaindex: Uint8Array,
    private readonly cache: BlockCache,
  ) {
    super();
    this.itemsCount = meta.itemsCount;
    this.blocksCount = meta.blocksCount;
    this.sizeBytes = meta.itemsBinBytes + meta.metaindexBytes;
    this.parseMetaindex(metaindex);
    this.bloom = readBloom(dir);
    this.fd = fs.openSync(path.join(dir, ITEMS_BIN), "r");
    const st = fs.fstatSync(this.fd);
    if (st.size !== meta.itemsBinBytes) {
      fs.closeSync(this.fd);
      corruptPart(dir, `${ITEMS_BIN} has ${st.size} bytes, metadata says ${meta.itemsBinBytes}`);
    }
  }

  static open(dir: string, cache: BlockCache): FilePart {
    let meta: PartMetadata;
    try {
      meta = JSON.parse(fs.readFileSync(path.join(dir, METADATA_JSON), "utf8")) as PartMetadata;
    } catch (err) {
      throw new InternalError(`mergeset part ${dir}: cannot read ${METADATA_JSON}: ${String(err)}`, "STRATA_CORRUPT_DATA");
    }
    if (meta.formatVersion !== PART_FORMAT_V1 && meta.formatVersion !== PART_FORMAT_V2 && meta.formatVersion !== PART_FORMAT_V3) {
      corruptPart(dir, `unknown format version ${meta.formatVersion}`);
    }
    const mi = fs.readFileSync(path.join(dir, METAINDEX_BIN));
    if (mi.length !== meta.metaindexBytes) {
      corruptPart(dir, `${METAINDEX_BIN} has ${mi.length} bytes, metadata says ${meta.metaindexBytes}`);
    }
    return new FilePart(dir, path.basename(dir), meta, new Uint8Array(mi.buffer, mi.byteOffset, mi.length), cache);
  }

  private parseMetaindex(mi: Uint8Array): void {
    const fail = (msg: string): never => corruptPart(this.dir, `${METAINDEX_BIN}: ${msg}`);
    if (mi.length < 16) fail("too short");
    const body = mi.length - 4;
    const r = new ByteReader(mi, 0, body, fail);
    const want = new ByteReader(mi, body, mi.length, fail).u32();
    if ((crc32(mi.subarray(0, body)) >>> 0) !== want) fail("checksum mismatch");
    if (r.u32() !== METAINDEX_MAGIC) fail("bad magic");
    const version = r.u32();
    if (version !== this.meta.formatVersion) fail(`version ${version}, metadata says ${this.meta.formatVersion}`);
    const codecOk = CODECS_OF[version]!;
    const n = r.u32();
    if (n !== this.blocksCount) fail(`${n} blocks, metadata says ${this.blocksCount}`);
    let items = 0;
    let expectOffset = 0;
    for (let i = 0; i < n; i++) {
      const crc = r.u32();
      const offset = r.u64();
      const size = r.u32();
      const count = r.u32();
      const itemsBytes = r.u32();
      const codec = r.u8();
      const firstLen = r.uvarint();
      const first = r.bytes(firstLen).slice();
      if (offset !== expectOffset) fail(`block ${i} at offset ${offset}, want ${expectOffset}`);
      if (!codecOk(codec)) fail(`block ${i}: codec ${codec} is not one of format ${version}`);
      if (count === 0) fail(`block ${i} is empty`);
      expectOffset += size;
      items += count;
      this.headers.push({ crc, offset, size, count, itemsBytes, codec });
      this.firsts.push(first);
    }
    if (r.pos !== body) fail("trailing bytes");
    if (items !== this.itemsCount) fail(`${items} items, metadata says ${this.itemsCount}`);
    if (expectOffset !== this.meta.itemsBinBytes) fail(`blocks cover ${expectOffset} bytes of ${this.meta.itemsBinBytes}`);
  }

  firstItem(i: number): Uint8Array {
    return this.firsts[i]!;
  }

  mayContainKey(h1: number, h2: number): boolean {
    return this.bloom === undefined || this.bloom.mayContain(h1, h2);
  }

  private cacheKey(i: number): number {
    return this.uid * 0x100_0000 + i;
  }

  block(i: number): Block {
    const key = this.cacheKey(i);
    let b = this.cache.get(key);
    if (b === undefined) {
      b = this.blockUncached(i);
      this.cache.set(key, b);
    }
    return b;
  }

  /**
   * A lookup that reads one item of each of many blocks (metricID → name for every series a
   * query matched) would otherwise fill the cache with whole blocks it never reads again: at
   * 500k series a node, one such query kept ~70 MiB of decoded id → name blocks.
   */
  blockSparse(i: number): Block {
    return this.cache.peek(this.cacheKey(i)) ?? this.blockUncached(i);
  }

  blockUncached(i: number): Block {
    const h = this.headers[i]!;
    const raw = new Uint8Array(h.size);
    let got = 0;
    while (got < h.size) {
      const n = fs.readSync(this.fd, raw, got, h.size - got, h.offset + got);
      if (n === 0) corruptPart(this.dir, `block ${i}: unexpected end of ${ITEMS_BIN}`);
      got += n;
    }
    if ((crc32(raw) >>> 0) !== h.crc) corruptPart(this.dir, `block ${i}: checksum mismatch`);
    // a payload is at most the items plus two 5-byte varints per item (and the common prefix's)
    const max = h.itemsBytes + 10 * h.count + 10;
    let plain: Uint8Array = raw;
    try {
      if (h.codec === CODEC_LZ4) plain = lz4Decompress(raw, max);
      else if (h.codec === CODEC_BROTLI) plain = brotliDecompressSync(raw, { maxOutputLength: max });
    } catch (err) {
      corruptPart(this.dir, `block ${i}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return this.meta.formatVersion === PART_FORMAT_V1 ? decodeBlock(plain, h.count, h.itemsBytes) : decodeBlockV2(plain, h.count, h.itemsBytes);
  }

  close(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
      // Its cached blocks can never be read again (a merge or close dropped the last reference):
      // without this they stayed until rotated out, filling the cache to its cap with dead blocks.
      for (let i = 0; i < this.blocksCount; i++) this.cache.delete(this.cacheKey(i));
    }
  }
}

function readBloom(dir: string): Bloom | undefined {
  const file = path.join(dir, BLOOM_BIN);
  if (!fs.existsSync(file)) return undefined;
  const b = fs.readFileSync(file);
  const u = new Uint8Array(b.buffer, b.byteOffset, b.length);
  const fail = (msg: string): never => corruptPart(dir, `${BLOOM_BIN}: ${msg}`);
  if (u.length < 16 || (u.length - 16) % 4 !== 0) fail("bad size");
  if ((crc32(u.subarray(0, u.length - 4)) >>> 0) !== readU32(u, u.length - 4)) fail("checksum mismatch");
  if (readU32(u, 0) !== BLOOM_MAGIC) fail("bad magic");
  const bits = readU32(u, 4);
  if (readU32(u, 8) !== BLOOM_PROBES) fail("unsupported probe count");
  const nw = (u.length - 16) / 4;
  if (bits !== nw * 32 || (bits !== 0 && (bits & (bits - 1)) !== 0)) fail("bad bit count");
  const words = new Uint32Array(nw);
  for (let i = 0; i < nw; i++) words[i] = readU32(u, 12 + 4 * i);
  return new Bloom(words, bits === 0 ? 0 : bits - 1);
}

function encodeBloom(bl: Bloom | undefined): Uint8Array {
  const words = bl?.words ?? new Uint32Array(0);
  const bb = new ByteBuffer(16 + words.length * 4);
  bb.u32(BLOOM_MAGIC);
  bb.u32(words.length * 32);
  bb.u32(BLOOM_PROBES);
  for (let i = 0; i < words.length; i++) bb.u32(words[i]!);
  bb.u32(crc32(bb.view()) >>> 0);
  return bb.view();
}

const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/**
 * Streams sorted unique items into a new part directory: items.bin (block payloads),
 * metaindex.bin (one row per block), metadata.json; every file fsynced, then the directory.
 */
export class PartWriter {
  private readonly bb = new BlockBuilder();
  private readonly out = new ByteBuffer(1 << 16);
  private readonly mi = new ByteBuffer(1 << 12);
  private offset = 0;
  private blocks = 0;
  private items = 0;
  private first: Uint8Array | undefined;
  private last: Uint8Array | undefined;
  private readonly payload = new ByteBuffer(1 << 15);
  /** Per first byte: items, and bytes of items.bin (fractions until finish() rounds them). */
  private readonly kindItems = new Float64Array(256);
  private readonly kindBytes = new Float64Array(256);
  private readonly blockKindPayload = new Float64Array(256);

  private constructor(
    readonly dir: string,
    private readonly fh: fs.promises.FileHandle,
    private readonly blockSize: number,
    private readonly bloomKeys: BloomKeys | undefined,
    private readonly codec: BlockCodec,
  ) {
    this.mi.u32(METAINDEX_MAGIC);
    this.mi.u32(PART_FORMAT_VERSION);
    this.mi.u32(0); // block count, patched in finish()
  }

  /** `codec`: how the blocks are compressed (constants.ts codecFor). */
  static async create(dir: string, blockSize: number, bloomNs: number | undefined, codec: BlockCodec): Promise<PartWriter> {
    await fs.promises.mkdir(dir, { recursive: true });
    const fh = await fs.promises.open(path.join(dir, ITEMS_BIN), "w");
    return new PartWriter(dir, fh, blockSize, bloomNs === undefined ? undefined : new BloomKeys(bloomNs), codec);
  }

  get itemsCount(): number {
    return this.items;
  }

  add(b: Uint8Array, start: number, end: number): void {
    this.bb.add(b, start, end);
    this.bloomKeys?.addItem(b, start, end);
    this.items++;
    if (this.bb.itemsBytes >= this.blockSize) this.closeBlock();
  }

  needsDrain(): boolean {
    return this.out.len >= 1 << 20;
  }

  async drain(): Promise<void> {
    if (this.out.len === 0) return;
    const data = this.out.view();
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done);
      done += bytesWritten;
    }
    this.out.reset();
  }

  private closeBlock(): void {
    const bb = this.bb;
    if (bb.count === 0) return;
    const first = bb.firstItem();
    if (this.first === undefined) this.first = first;
    this.last = bb.lastItem();
    this.payload.reset();
    const common = bb.encode(this.payload);
    let payload = this.payload.view();
    let codec = CODEC_NONE;
    if (payload.length >= MIN_COMPRESS) {
      const c =
        this.codec.codec === CODEC_LZ4
          ? lz4Compress(payload)
          : brotliCompressSync(payload, {
              params: { [zlibConstants.BROTLI_PARAM_QUALITY]: this.codec.quality, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: payload.length },
            });
      // compress only where it pays: decoding costs a native call per block read
      if (c.length <= payload.length * 0.875) {
        payload = c;
        codec = this.codec.codec;
      }
    }
    this.tallyKinds(payload.length, common);
    const mi = this.mi;
    mi.u32(crc32(payload) >>> 0);
    mi.u64(this.offset);
    mi.u32(payload.length);
    mi.u32(bb.count);
    mi.u32(bb.itemsBytes);
    mi.byte(codec);
    mi.uvarint(first.length);
    mi.bytes(first);
    this.out.bytes(payload);
    this.offset += payload.length;
    this.blocks++;
    bb.reset();
  }

  /**
   * Splits a block's stored size among the kinds of its items by the share of the payload each
   * encodes to (approximated by the item bytes past the block's first item's kind byte). The
   * prefixes shared with the previous item are the encoder's (`common` + its column).
   */
  private tallyKinds(stored: number, common: number): void {
    const bb = this.bb;
    const ib = bb.items.buf;
    const offs = bb.offs;
    const cpls = lastPrefixLens();
    const per = this.blockKindPayload;
    per.fill(0);
    let prevKind = -1;
    let total = 0;
    for (let i = 0; i < bb.count; i++) {
      const s = offs[i]!;
      const e = i + 1 < bb.count ? offs[i + 1]! : bb.items.len;
      const k = ib[s]!;
      this.kindItems[k]!++;
      // an item costs roughly what differs from its predecessor, plus its two lengths
      let cost = 2 + (e - s);
      if (k === prevKind && i > 0) cost = 2 + (e - s) - (common + cpls[i]!);
      per[k]! += cost;
      total += cost;
      prevKind = k;
    }
    if (total === 0) return;
    for (let k = 0; k < 256; k++) if (per[k]! > 0) this.kindBytes[k]! += (stored * per[k]!) / total;
  }

  private kinds(): KindSizes {
    const out: KindSizes = {};
    for (let k = 0; k < 256; k++) {
      if (this.kindItems[k] === 0) continue;
      out[k.toString(16).padStart(2, "0")] = { items: this.kindItems[k]!, bytes: Math.round(this.kindBytes[k]!) };
    }
    return out;
  }

  async finish(): Promise<PartMetadata> {
    this.closeBlock();
    await this.drain();
    await this.fh.sync();
    await this.fh.close();
    const mi = this.mi;
    const b = mi.buf;
    b[8] = this.blocks >>> 24;
    b[9] = (this.blocks >>> 16) & 0xff;
    b[10] = (this.blocks >>> 8) & 0xff;
    b[11] = this.blocks & 0xff;
    mi.u32(crc32(mi.view()) >>> 0);
    const meta: PartMetadata = {
      formatVersion: PART_FORMAT_VERSION,
      itemsCount: this.items,
      blocksCount: this.blocks,
      itemsBinBytes: this.offset,
      metaindexBytes: mi.len,
      firstItem: this.first === undefined ? "" : toHex(this.first),
      lastItem: this.last === undefined ? "" : toHex(this.last),
      kinds: this.kinds(),
    };
    await writeSynced(path.join(this.dir, METAINDEX_BIN), mi.view());
    if (this.bloomKeys !== undefined) await writeSynced(path.join(this.dir, BLOOM_BIN), encodeBloom(this.bloomKeys.build()));
    await writeSynced(path.join(this.dir, METADATA_JSON), Buffer.from(JSON.stringify(meta, null, 1)));
    fsyncDir(this.dir);
    return meta;
  }

  /** Closes the file after a failed write (the caller removes the directory). */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

async function writeSynced(file: string, data: Uint8Array): Promise<void> {
  const fh = await fs.promises.open(file, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
