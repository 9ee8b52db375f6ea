import { ANY_TIME, UnsupportedMediaTypeError, seriesHash, seriesHashRange, writeRecordsName, type LabelLimits, type RowsSink, type SampleWindow, type SeriesHash, type Tenant } from "@strata/core";
import { LabelCanonicalizer, isUtf8Range } from "./canonical.js";
import { HIT_RECORDS, MISS, RawLabelsCache } from "./labels-cache.js";
import { WIRE_I64, WIRE_LEN, WIRE_VARINT, WireCursor, protoError } from "./wire.js";

/**
 * Hand-written decoders for Prometheus remote write 1.0 (prometheus.WriteRequest) and 2.0
 * (io.prometheus.write.v2.Request) bodies, after snappy decompression. They write every float
 * sample straight into a RowsSink (a RowsBatchWriter, or @strata/cluster RoutedRows, which
 * splits rows per storage node as they come) with canonical metric-name bytes and its series
 * hash, and create no object per sample (per series only the canonical name is built, in
 * reused scratch space; for remote write 1.0 name and hash usually come from RawLabelsCache). Tested
 * against the generated protobuf-es decoders (test/remotewrite-diff.test.ts).
 *
 * Any problem — malformed protobuf, a label over a limit, duplicate names, a missing metric
 * name — throws BadDataError naming it; the caller then discards the writer's contents, so a
 * request is accepted whole or not at all.
 *
 * Native histogram samples and exemplars are counted but not stored (Strata stores floats).
 */

/**
 * timeSeriesV1's answer for a series not in the raw-labels cache whose label records spell a
 * canonical name that needs no parse (LabelCanonicalizer.recordsCanonical); beside the
 * cache's MISS, HIT_NAME and HIT_RECORDS.
 */
const FIRST_SPELLED = -1;

/** Metric types with the numbering of prometheus.MetricMetadata.MetricType. */
export const MetricTypeNumber = {
  unknown: 0,
  counter: 1,
  gauge: 2,
  histogram: 3,
  gaugehistogram: 4,
  summary: 5,
  info: 6,
  stateset: 7,
} as const;

export interface RemoteWriteMetadata {
  /** Metric family name (for histograms and summaries without the _bucket/_sum/_count suffix). */
  readonly family: string;
  /** 0..7 as in MetricTypeNumber. */
  readonly type: number;
  readonly help: string;
  readonly unit: string;
}

export interface RemoteWriteResult {
  series: number;
  /** Float samples written to the batch. */
  samples: number;
  /** Float samples left out: older than the window's minT. */
  tooOld: number;
  /** Float samples left out: newer than the window's maxT. */
  tooNew: number;
  /** Native histogram samples seen (not stored). */
  histograms: number;
  /** Exemplars seen (not stored). */
  exemplars: number;
  metadata: RemoteWriteMetadata[];
}

/** A plain Uint8Array view of a Buffer: its subarray() is much cheaper than Buffer's. */
function plain(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export class RemoteWriteDecoder {
  private readonly canon: LabelCanonicalizer;
  private readonly cur = new WireCursor(new Uint8Array(0));
  private readonly sub = new WireCursor(new Uint8Array(0));
  private symStart = new Int32Array(1024);
  private symEnd = new Int32Array(1024);
  private symCount = 0;
  private readonly textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  private readonly cache: RawLabelsCache | undefined;
  private account = 0;
  private project = 0;
  private readonly hash: SeriesHash = { lo: 0, hi: 0 };
  /** Where a new spelled series' name is written to be hashed (see FIRST_SPELLED). */
  private nameScratch = new Uint8Array(256);
  private nameView = new DataView(this.nameScratch.buffer);

  /**
   * `labelsCacheBytes` (default 64 MiB, 0 disables) bounds the cache of canonical names by raw
   * label bytes (see RawLabelsCache) used for remote write 1.0.
   */
  constructor(limits: LabelLimits = {}, opts: { readonly labelsCacheBytes?: number } = {}) {
    this.canon = new LabelCanonicalizer(limits);
    const bytes = opts.labelsCacheBytes ?? 64 * 1024 * 1024;
    this.cache = bytes > 0 ? new RawLabelsCache(bytes) : undefined;
  }

  /** The raw-labels cache (for metrics), if enabled. */
  get labelsCache(): RawLabelsCache | undefined {
    return this.cache;
  }

  private growNameScratch(n: number): void {
    this.nameScratch = new Uint8Array(Math.max(n, 2 * this.nameScratch.length));
    this.nameView = new DataView(this.nameScratch.buffer);
  }

  private setTenant(tenant: Tenant): void {
    this.canon.setTenant(tenant);
    this.account = tenant.accountID >>> 0;
    this.project = tenant.projectID >>> 0;
  }

  /** Decodes a remote write 1.0 WriteRequest into `out`; samples outside `window` are counted, not written. */
  decodeV1(body: Uint8Array, tenant: Tenant, out: RowsSink, window: SampleWindow = ANY_TIME): RemoteWriteResult {
    this.minT = window.minT;
    this.maxT = window.maxT;
    try {
      return this.requestV1(body, tenant, out);
    } finally {
      this.cache?.release();
    }
  }

  private requestV1(body: Uint8Array, tenant: Tenant, out: RowsSink): RemoteWriteResult {
    body = plain(body);
    const res: RemoteWriteResult = { series: 0, samples: 0, tooOld: 0, tooNew: 0, histograms: 0, exemplars: 0, metadata: [] };
    this.setTenant(tenant);
    const c = this.cur;
    c.reset(body);
    this.sub.reset(body);
    while (c.pos < body.length) {
      c.tag();
      if (c.fieldNo === 1) {
        c.expect(WIRE_LEN, "WriteRequest.timeseries");
        const end = c.lenEnd();
        this.timeSeriesV1(body, c.pos, end, out, res);
        c.pos = end;
      } else if (c.fieldNo === 3) {
        c.expect(WIRE_LEN, "WriteRequest.metadata");
        const end = c.lenEnd();
        this.metadataV1(body, c.pos, end, res);
        c.pos = end;
      } else {
        c.skip();
      }
    }
    return res;
  }

  private timeSeriesV1(body: Uint8Array, start: number, end: number, out: RowsSink, res: RemoteWriteResult): void {
    const s = this.sub;
    const cache = this.cache;
    // The canonical name as (nameBuf, nameOff, nameLen): a view per series would be garbage.
    let nameBuf: Uint8Array | undefined;
    let nameOff = 0;
    let nameLen = 0;
    let samples = 0;
    /** The name's length when it is to be written from the label records body[start, labelsEnd), else -1. */
    let recordsLen = -1;
    // Senders put the labels first: find the end of that run of field-1 records and look its
    // bytes up in the cache. Anything unusual (malformed lengths, labels after other fields)
    // goes the full way below, which also reports errors. The same walk sees whether the
    // records spell the name (each `0a <rec> 0a <ln> name 12 <lv> value`, lengths one byte) and
    // how long that name is: 4 bytes shorter per record than the records, plus the tenant.
    let labelsEnd = start;
    /** Samples after the labels when all fields there are short samples (-1: the careful walk). */
    let shortSamples = -1;
    if (cache !== undefined) {
      let spelled = 8;
      while (labelsEnd < end && body[labelsEnd] === 0x0a) {
        const n = body[labelsEnd + 1]!;
        const p = labelsEnd + 2 + n;
        if (n >= 0x80 || p > end) {
          labelsEnd = -1; // long label records are rare: no cache
          break;
        }
        if (spelled >= 0) {
          const ln = body[labelsEnd + 3]!;
          if (body[labelsEnd + 2] === 0x0a && ln < 0x80 && 4 + ln <= n && body[labelsEnd + 4 + ln] === 0x12 && 4 + ln + body[labelsEnd + 5 + ln]! === n) spelled += n - 2;
          else spelled = -1;
        }
        labelsEnd = p;
      }
      let hit = labelsEnd > start ? cache.findRoute(body, start, labelsEnd, this.account, this.project, spelled) : MISS;
      // A new series whose label records spell a valid canonical name (a sender's usual first
      // request): the name is the records without their tags, so it is written once to be
      // hashed and then from the records into each node's batch, with none of the full parse.
      if (hit === MISS && labelsEnd > start && spelled >= 0 && this.canon.recordsCanonical(body, start, labelsEnd)) hit = FIRST_SPELLED;
      if (hit !== MISS) {
        // What follows the labels: usually only samples with a one-byte length.
        let p = labelsEnd;
        let n = 0;
        while (p < end && body[p] === 0x12 && body[p + 1]! < 0x80) {
          p += 2 + body[p + 1]!;
          n++;
        }
        if (p === end) {
          shortSamples = n;
          samples = n;
        } else {
          s.pos = labelsEnd;
          s.limit = end;
          this.counts.fill(0);
          while (s.pos < end) {
            const f = s.tag();
            if (f === 1) break; // labels after other fields: the full way
            this.skipCountedV1(f);
          }
          if (s.pos >= end) samples = this.commitCounts(res);
        }
        if (shortSamples >= 0 || s.pos >= end) {
          if (hit === FIRST_SPELLED) {
            const dv = this.cur.dv;
            if (this.nameScratch.length < spelled) this.growNameScratch(spelled);
            writeRecordsName(dv, start, labelsEnd, this.account, this.project, this.nameView, 0);
            seriesHashRange(this.nameView, this.nameScratch, 0, spelled, this.hash);
            cache.addSpelled(this.hash.lo, this.hash.hi);
            recordsLen = spelled;
            nameBuf = body;
            nameLen = spelled;
          } else {
            if (hit === HIT_RECORDS) {
              // The label records spell the name: each node's batch gets it straight from them.
              recordsLen = cache.nameLen;
              nameBuf = body;
            } else {
              nameBuf = cache.buffer;
              nameOff = cache.nameOff;
            }
            nameLen = cache.nameLen;
            this.hash.lo = cache.hashLo;
            this.hash.hi = cache.hashHi;
          }
        } else {
          labelsEnd = -1;
        }
      }
    }
    if (nameBuf === undefined) {
      const name = this.labelsV1(body, start, end);
      nameBuf = name;
      nameOff = 0;
      nameLen = name.length;
      const h = seriesHash(name, this.hash);
      samples = this.commitCounts(res);
      if (cache !== undefined && labelsEnd > start && this.lastLabelsEnd === labelsEnd) cache.add(body, start, labelsEnd, this.account, this.project, name, h.lo, h.hi);
    }
    res.series++;
    if (samples === 0) return;
    if (shortSamples > 0) {
      this.shortSamplesV1(body, labelsEnd, end, out, res, nameBuf, nameOff, nameLen, recordsLen, start);
      return;
    }
    // Pass 2: samples (after the labels when they came first). The first row carries the
    // name, the others refer to it.
    s.pos = labelsEnd > start ? labelsEnd : start;
    s.limit = end;
    let first = true;
    while (s.pos < end) {
      s.tag();
      if (s.fieldNo !== 2) {
        s.skip();
        continue;
      }
      s.limit = s.lenEnd();
      this.sample();
      if (!this.inWindow(res)) {
        s.limit = end;
        continue;
      }
      if (!first) out.addSameName(this.sampleTs, this.sampleValue);
      else if (recordsLen >= 0) out.addRecordsName(this.cur.dv, start, labelsEnd, recordsLen, this.account, this.project, this.hash.lo, this.hash.hi, this.sampleTs, this.sampleValue);
      else out.addHashedName(nameBuf, nameOff, nameLen, this.hash.lo, this.hash.hi, this.sampleTs, this.sampleValue);
      first = false;
      s.limit = end;
      res.samples++;
    }
  }

  /**
   * The samples of a cached series when body[from, end) holds only samples with a one-byte
   * length (`12 <len> Sample`); the series' labels are body[labelsStart, from). Rows as in pass 2
   * of timeSeriesV1.
   */
  private shortSamplesV1(
    body: Uint8Array,
    from: number,
    end: number,
    out: RowsSink,
    res: RemoteWriteResult,
    nameBuf: Uint8Array,
    nameOff: number,
    nameLen: number,
    recordsLen: number,
    labelsStart: number,
  ): void {
    let first = true;
    for (let p = from; p < end; ) {
      const q = p + 2;
      p = q + body[p + 1]!;
      this.sampleAt(body, q, p);
      if (!this.inWindow(res)) continue;
      if (!first) out.addSameName(this.sampleTs, this.sampleValue);
      else if (recordsLen >= 0) out.addRecordsName(this.cur.dv, labelsStart, from, recordsLen, this.account, this.project, this.hash.lo, this.hash.hi, this.sampleTs, this.sampleValue);
      else out.addHashedName(nameBuf, nameOff, nameLen, this.hash.lo, this.hash.hi, this.sampleTs, this.sampleValue);
      first = false;
      res.samples++;
    }
  }

  /**
   * Decodes the Sample message body[q, e) into sampleTs/sampleValue. The usual encoding —
   * `09 <double> 10 <timestamp varint of at most 7 bytes>` — is read directly; anything else
   * (fields omitted or repeated, other fields, negative or huge timestamps) by sample().
   */
  private sampleAt(body: Uint8Array, q: number, e: number): void {
    if (body[q] === 0x09 && q + 10 < e && body[q + 9] === 0x10 && e - q <= 17) {
      let ts = 0;
      let mul = 1;
      let i = q + 10;
      for (; i < e; i++, mul *= 128) {
        const b = body[i]!;
        ts += (b & 0x7f) * mul;
        if (b < 0x80) break;
      }
      if (i === e - 1) {
        this.sampleValue = this.cur.dv.getFloat64(q + 1, true);
        this.sampleTs = ts;
        return;
      }
    }
    const s = this.sub;
    s.pos = q;
    s.limit = e;
    this.sample();
  }

  /** The window of the request being decoded (see decodeV1). */
  private minT = -Infinity;
  private maxT = Infinity;

  /** Whether the last sample() is inside the window; counts it in `res` when not. */
  private inWindow(res: RemoteWriteResult): boolean {
    if (this.sampleTs < this.minT) res.tooOld++;
    else if (this.sampleTs > this.maxT) res.tooNew++;
    else return true;
    return false;
  }

  /** Timestamp and value of the Sample decoded last by sample(). */
  private sampleTs = 0;
  private sampleValue = 0;

  /** End of the last label record seen by labelsV1 when all labels came first, else -1. */
  private lastLabelsEnd = -1;
  /** Samples, exemplars and histograms of the TimeSeries being decoded (by field number 2, 3, 4). */
  private readonly counts = new Int32Array(5);

  /** Skips the TimeSeries field whose tag was just read, counting samples, exemplars and histograms. */
  private skipCountedV1(f: number): void {
    const s = this.sub;
    if (f < 2 || f > 4) {
      s.skip();
      return;
    }
    s.expect(WIRE_LEN, f === 2 ? "TimeSeries.samples" : f === 3 ? "TimeSeries.exemplars" : "TimeSeries.histograms");
    s.pos = s.lenEnd();
    this.counts[f]!++;
  }

  /** Adds the counted exemplars and histograms to `res`; returns the samples counted. */
  private commitCounts(res: RemoteWriteResult): number {
    res.exemplars += this.counts[3]!;
    res.histograms += this.counts[4]!;
    return this.counts[2]!;
  }

  /**
   * Pass 1 of a TimeSeries the full way: parses, validates and canonicalizes its labels and
   * counts its samples, exemplars and histograms (into `counts`). Fields may come in any order.
   */
  private labelsV1(body: Uint8Array, start: number, end: number): Uint8Array {
    const s = this.sub;
    const canon = this.canon;
    canon.begin(body);
    s.pos = start;
    s.limit = end;
    this.counts.fill(0);
    let labelsEnd = start;
    let otherSeen = false;
    while (s.pos < end) {
      const field = s.tag();
      if (field !== 1) {
        otherSeen = true;
        this.skipCountedV1(field);
        continue;
      }
      s.expect(WIRE_LEN, "TimeSeries.labels");
      const lend = s.lenEnd();
      s.limit = lend;
      let ns = 0, ne = 0, vs = 0, ve = 0;
      while (s.pos < lend) {
        const f = s.tag();
        if (f === 1 || f === 2) {
          s.expect(WIRE_LEN, "Label.name/value");
          const e = s.lenEnd();
          if (f === 1) { ns = s.pos; ne = e; } else { vs = s.pos; ve = e; }
          s.pos = e;
        } else {
          s.skip();
        }
      }
      s.limit = end;
      canon.add(ns, ne, vs, ve);
      labelsEnd = otherSeen ? -1 : lend;
    }
    const name = canon.finish();
    this.lastLabelsEnd = labelsEnd;
    return name;
  }


  /** Decodes a Sample message ending at the cursor's limit (value = 1 double, timestamp = 2 int64). */
  private sample(): void {
    const s = this.sub;
    const send = s.limit;
    let value = 0;
    let ts = 0;
    while (s.pos < send) {
      s.tag();
      if (s.fieldNo === 1) {
        s.expect(WIRE_I64, "Sample.value");
        value = s.double();
      } else if (s.fieldNo === 2) {
        s.expect(WIRE_VARINT, "Sample.timestamp");
        ts = s.int64("Sample.timestamp");
      } else {
        s.skip();
      }
    }
    this.sampleTs = ts;
    this.sampleValue = value;
  }

  private metadataV1(body: Uint8Array, start: number, end: number, res: RemoteWriteResult): void {
    const s = this.sub;
    s.pos = start;
    s.limit = end;
    let type = 0;
    let family = "";
    let help = "";
    let unit = "";
    while (s.pos < end) {
      s.tag();
      switch (s.fieldNo) {
        case 1:
          s.expect(WIRE_VARINT, "MetricMetadata.type");
          type = s.uint32();
          break;
        case 2:
        case 4:
        case 5: {
          s.expect(WIRE_LEN, "MetricMetadata string");
          const e = s.lenEnd();
          if (!isUtf8Range(body, s.pos, e)) throw protoError("MetricMetadata string is not valid UTF-8", s.pos);
          const str = this.textDecoder.decode(body.subarray(s.pos, e));
          if (s.fieldNo === 2) family = str;
          else if (s.fieldNo === 4) help = str;
          else unit = str;
          s.pos = e;
          break;
        }
        default:
          s.skip();
      }
    }
    if (family !== "") res.metadata.push({ family, type: type <= 7 ? type : 0, help, unit });
  }

  /** Decodes a remote write 2.0 Request into `out`. */
  decodeV2(body: Uint8Array, tenant: Tenant, out: RowsSink, window: SampleWindow = ANY_TIME): RemoteWriteResult {
    this.minT = window.minT;
    this.maxT = window.maxT;
    body = plain(body);
    const res: RemoteWriteResult = { series: 0, samples: 0, tooOld: 0, tooNew: 0, histograms: 0, exemplars: 0, metadata: [] };
    this.setTenant(tenant);
    const c = this.cur;
    c.reset(body);
    this.sub.reset(body);
    // Pass 1: the symbols table (it may follow the series on the wire).
    let nsym = 0;
    while (c.pos < body.length) {
      c.tag();
      if (c.fieldNo === 4) {
        c.expect(WIRE_LEN, "Request.symbols");
        const e = c.lenEnd();
        if (!isUtf8Range(body, c.pos, e)) throw protoError(`symbol ${nsym} is not valid UTF-8`, c.pos);
        if (nsym === this.symStart.length) this.growSymbols();
        this.symStart[nsym] = c.pos;
        this.symEnd[nsym] = e;
        nsym++;
        c.pos = e;
      } else if (c.fieldNo === 5) {
        c.expect(WIRE_LEN, "Request.timeseries");
        c.pos = c.lenEnd();
      } else {
        c.skip();
      }
    }
    this.symCount = nsym;
    // Pass 2: the series.
    const seenMeta = new Set<number>();
    c.pos = 0;
    while (c.pos < body.length) {
      c.tag();
      if (c.fieldNo === 5) {
        const end = c.lenEnd();
        this.timeSeriesV2(body, c.pos, end, nsym, out, res, seenMeta);
        c.pos = end;
      } else {
        c.skip();
      }
    }
    return res;
  }

  private growSymbols(): void {
    const a = new Int32Array(this.symStart.length * 2);
    a.set(this.symStart);
    this.symStart = a;
    const b = new Int32Array(this.symEnd.length * 2);
    b.set(this.symEnd);
    this.symEnd = b;
  }

  private symbolIndex(ref: number, nsym: number, what: string, at: number): number {
    if (ref >= nsym && (ref !== 0 || what === "TimeSeries.labels_refs")) throw protoError(`${what} ${ref} is out of range of ${nsym} symbols`, at);
    return ref;
  }

  private timeSeriesV2(
    body: Uint8Array,
    start: number,
    end: number,
    nsym: number,
    out: RowsSink,
    res: RemoteWriteResult,
    seenMeta: Set<number>,
  ): void {
    const s = this.sub;
    const canon = this.canon;
    canon.begin(body, false);
    s.pos = start;
    s.limit = end;
    let samples = 0;
    let pendingName = -1; // a name ref waiting for its value ref
    let metaType = 0;
    let helpRef = 0;
    let unitRef = 0;
    let hasMeta = false;
    const addRef = (ref: number, at: number): void => {
      const r = this.symbolIndex(ref, nsym, "TimeSeries.labels_refs", at);
      if (pendingName < 0) {
        pendingName = r;
      } else {
        canon.add(this.symStart[pendingName]!, this.symEnd[pendingName]!, this.symStart[r]!, this.symEnd[r]!);
        pendingName = -1;
      }
    };
    while (s.pos < end) {
      s.tag();
      switch (s.fieldNo) {
        case 1:
          if (s.wireType === WIRE_LEN) {
            const pend = s.lenEnd();
            s.limit = pend;
            while (s.pos < pend) {
              const at = s.pos;
              addRef(s.uint32(), at);
            }
            s.limit = end;
          } else {
            s.expect(WIRE_VARINT, "TimeSeries.labels_refs");
            const at = s.pos;
            addRef(s.uint32(), at);
          }
          break;
        case 2:
          s.expect(WIRE_LEN, "TimeSeries.samples");
          s.pos = s.lenEnd();
          samples++;
          break;
        case 3:
          s.expect(WIRE_LEN, "TimeSeries.histograms");
          s.pos = s.lenEnd();
          res.histograms++;
          break;
        case 4:
          s.expect(WIRE_LEN, "TimeSeries.exemplars");
          s.pos = s.lenEnd();
          res.exemplars++;
          break;
        case 5: {
          s.expect(WIRE_LEN, "TimeSeries.metadata");
          const mend = s.lenEnd();
          s.limit = mend;
          hasMeta = true;
          while (s.pos < mend) {
            const f = s.tag();
            if (f === 1 || f === 3 || f === 4) {
              s.expect(WIRE_VARINT, "Metadata field");
              const at = s.pos;
              const v = s.uint32();
              if (f === 1) metaType = v;
              else if (f === 3) helpRef = this.symbolIndex(v, nsym, "Metadata.help_ref", at);
              else unitRef = this.symbolIndex(v, nsym, "Metadata.unit_ref", at);
            } else {
              s.skip();
            }
          }
          s.limit = end;
          break;
        }
        case 6:
          s.expect(WIRE_VARINT, "TimeSeries.created_timestamp");
          s.varint64();
          break;
        default:
          s.skip();
      }
    }
    if (pendingName >= 0) throw protoError("TimeSeries.labels_refs has an odd number of references", start);
    const name = canon.finish();
    res.series++;
    if (hasMeta && (metaType !== 0 || helpRef !== 0 || unitRef !== 0)) this.metadataV2(body, metaType, helpRef, unitRef, res, seenMeta);
    if (samples === 0) return;
    const h = seriesHash(name, this.hash);
    let first = true;
    s.pos = start;
    while (s.pos < end) {
      s.tag();
      if (s.fieldNo !== 2) {
        s.skip();
        continue;
      }
      s.limit = s.lenEnd();
      this.sample();
      if (!this.inWindow(res)) {
        s.limit = end;
        continue;
      }
      if (first) out.addHashedName(name, 0, name.length, h.lo, h.hi, this.sampleTs, this.sampleValue);
      else out.addSameName(this.sampleTs, this.sampleValue);
      first = false;
      s.limit = end;
      res.samples++;
    }
  }

  private metadataV2(
    body: Uint8Array,
    type: number,
    helpRef: number,
    unitRef: number,
    res: RemoteWriteResult,
    seen: Set<number>,
  ): void {
    const [ms, me] = this.canon.metricNameRange();
    // One entry per metric name per request: key by the name's offset in the body (the
    // symbols table is de-duplicated, so equal names share an offset).
    if (seen.has(ms)) return;
    seen.add(ms);
    const t = type <= 7 ? type : 0;
    let family = this.textDecoder.decode(body.subarray(ms, me));
    if (t === MetricTypeNumber.histogram || t === MetricTypeNumber.gaugehistogram || t === MetricTypeNumber.summary) {
      family = family.replace(/_(bucket|sum|count)$/, "");
    }
    const str = (ref: number): string =>
      ref < this.symCount ? this.textDecoder.decode(body.subarray(this.symStart[ref]!, this.symEnd[ref]!)) : "";
    res.metadata.push({ family, type: t, help: str(helpRef), unit: str(unitRef) });
  }
}

/**
 * Which remote write version a request carries, from Content-Type (remote write 2.0 spec:
 * `application/x-protobuf;proto=io.prometheus.write.v2.Request`; a bare
 * `application/x-protobuf` or `proto=prometheus.WriteRequest` is 1.0; no Content-Type is
 * taken as 1.0 for curl users). Anything else is 415.
 */
export function remoteWriteVersion(contentType: string | undefined, contentEncoding: string | undefined): 1 | 2 {
  if (contentEncoding !== undefined && contentEncoding.trim() !== "" && contentEncoding.trim().toLowerCase() !== "snappy") {
    throw new UnsupportedMediaTypeError(`unsupported Content-Encoding ${JSON.stringify(contentEncoding)}: remote write bodies must be snappy`);
  }
  if (contentType === undefined || contentType.trim() === "") return 1;
  const [media, ...params] = contentType.split(";").map((s) => s.trim());
  if (media?.toLowerCase() !== "application/x-protobuf") {
    throw new UnsupportedMediaTypeError(
      `unsupported Content-Type ${JSON.stringify(contentType)}: want application/x-protobuf (remote write 1.0) or application/x-protobuf;proto=io.prometheus.write.v2.Request`,
    );
  }
  for (const p of params) {
    const [k, v] = p.split("=").map((s) => s.trim());
    if (k?.toLowerCase() !== "proto") continue;
    if (v === "io.prometheus.write.v2.Request") return 2;
    if (v === "prometheus.WriteRequest") return 1;
    throw new UnsupportedMediaTypeError(`unsupported remote write message ${JSON.stringify(v)} in Content-Type`);
  }
  return 1;
}
