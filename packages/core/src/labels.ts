import { BadDataError } from "./errors.js";
import type { Tenant } from "./tenant.js";
import { xxhash64Native } from "./xxhash.js";

export const METRIC_NAME_LABEL = "__name__";

export interface Label {
  readonly name: string;
  readonly value: string;
}

/**
 * A label set in canonical form: sorted by name (UTF-8 byte order, as Prometheus sorts),
 * names unique, no empty values (an empty value means the label is absent). `__name__` is an
 * ordinary member of the set.
 */
export type Labels = readonly Label[];

/** A series identity: the tenant plus its labels (including `__name__`). */
export interface MetricName {
  readonly tenant: Tenant;
  readonly labels: Labels;
}

/**
 * Compares two strings in UTF-8 byte order (equivalently, code point order), which is how
 * Prometheus and VictoriaMetrics sort label names and values. JavaScript's `<` compares UTF-16
 * code units, which differs for characters above U+FFFF versus U+E000–U+FFFF.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    // A surrogate encodes a code point above U+FFFF, larger than any BMP character.
    if (sa !== sb) return sa ? 1 : -1;
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Orders anything with `labels` by compareLabels. A module-level function on purpose: an arrow
 * made per sort call is a new closure each time, and V8 re-optimized each one (a TurboFan
 * compile per query on hot paths).
 */
export function compareByLabels(a: { readonly labels: Labels }, b: { readonly labels: Labels }): number {
  return compareLabels(a.labels, b.labels);
}

function compareLabelsByNameValue(x: Label, y: Label): number {
  return compareStrings(x.name, y.name) || compareStrings(x.value, y.value);
}

export function compareLabels(a: Labels, b: Labels): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const la = a[i]!;
    const lb = b[i]!;
    let c = compareStrings(la.name, lb.name);
    if (c !== 0) return c;
    c = compareStrings(la.value, lb.value);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

export function labelsEqual(a: Labels, b: Labels): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.name !== b[i]!.name || a[i]!.value !== b[i]!.value) return false;
  }
  return true;
}

/** Sorts, drops empty values. Duplicate names are kept (validation reports them). */
export function normalizeLabels(labels: Iterable<Label>): Label[] {
  const out: Label[] = [];
  for (const l of labels) if (l.value !== "") out.push(l);
  out.sort(compareLabelsByNameValue);
  return out;
}

export function labelsFromRecord(rec: Readonly<Record<string, string>>): Label[] {
  return normalizeLabels(Object.entries(rec).map(([name, value]) => ({ name, value })));
}

export function labelsToRecord(labels: Labels): Record<string, string> {
  const rec: Record<string, string> = {};
  for (const l of labels) rec[l.name] = l.value;
  return rec;
}

export function getLabel(labels: Labels, name: string): string {
  for (const l of labels) if (l.name === name) return l.value;
  return "";
}

export function metricNameOf(labels: Labels): string {
  return getLabel(labels, METRIC_NAME_LABEL);
}

const LEGACY_METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LEGACY_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function isLegacyMetricName(s: string): boolean {
  return LEGACY_METRIC_NAME.test(s);
}

export function isLegacyLabelName(s: string): boolean {
  return LEGACY_LABEL_NAME.test(s);
}

/** True when `s` has no lone surrogates, i.e. encodes to valid UTF-8. */
export function isValidUtf8String(s: string): boolean {
  return s.isWellFormed();
}

export interface LabelLimits {
  /** Maximum number of labels per series, `__name__` included (VictoriaMetrics: 40). */
  readonly maxLabels?: number;
  /** Maximum label name length in bytes (VictoriaMetrics: 256). */
  readonly maxLabelNameLen?: number;
  /** Maximum label value length in bytes (VictoriaMetrics: 4096). */
  readonly maxLabelValueLen?: number;
  /** Require the pre-3.0 character sets for names instead of any UTF-8. */
  readonly legacyNames?: boolean;
}

function describe(labels: Labels): string {
  const s = formatLabels(labels);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/**
 * Validates a canonical label set with Prometheus 3 rules: a non-empty `__name__`, names
 * non-empty valid UTF-8 (or the legacy character sets when asked), values valid UTF-8, no
 * duplicate names, and the given limits. Throws BadDataError naming the offending label.
 */
export function validateLabels(labels: Labels, limits: LabelLimits = {}): void {
  if (limits.maxLabels !== undefined && labels.length > limits.maxLabels) {
    throw new BadDataError(
      `series ${describe(labels)} has ${labels.length} labels, more than the limit of ${limits.maxLabels}`,
      "STRATA_TOO_MANY_LABELS",
    );
  }
  let hasName = false;
  for (let i = 0; i < labels.length; i++) {
    const { name, value } = labels[i]!;
    if (name === "") {
      throw new BadDataError(`series ${describe(labels)} has a label with an empty name`, "STRATA_INVALID_LABEL_NAME");
    }
    if (i > 0 && labels[i - 1]!.name === name) {
      throw new BadDataError(`series ${describe(labels)} has duplicate label name ${JSON.stringify(name)}`, "STRATA_DUPLICATE_LABEL");
    }
    if (!isValidUtf8String(name)) {
      throw new BadDataError(`label name ${JSON.stringify(name)} is not valid UTF-8`, "STRATA_INVALID_LABEL_NAME");
    }
    if (!isValidUtf8String(value)) {
      throw new BadDataError(`value of label ${JSON.stringify(name)} is not valid UTF-8`, "STRATA_INVALID_LABEL_VALUE");
    }
    if (limits.maxLabelNameLen !== undefined && Buffer.byteLength(name) > limits.maxLabelNameLen) {
      throw new BadDataError(
        `label name ${JSON.stringify(name.slice(0, 64))}… is longer than -maxLabelNameLen=${limits.maxLabelNameLen} bytes`,
        "STRATA_LABEL_TOO_LONG",
      );
    }
    if (limits.maxLabelValueLen !== undefined && Buffer.byteLength(value) > limits.maxLabelValueLen) {
      throw new BadDataError(
        `value of label ${JSON.stringify(name)} is longer than -maxLabelValueLen=${limits.maxLabelValueLen} bytes`,
        "STRATA_LABEL_TOO_LONG",
      );
    }
    if (name === METRIC_NAME_LABEL) {
      hasName = true;
      if (limits.legacyNames && !isLegacyMetricName(value)) {
        throw new BadDataError(`invalid metric name ${JSON.stringify(value)}`, "STRATA_INVALID_METRIC_NAME");
      }
    } else if (limits.legacyNames && !isLegacyLabelName(name)) {
      throw new BadDataError(`invalid label name ${JSON.stringify(name)}`, "STRATA_INVALID_LABEL_NAME");
    }
  }
  if (!hasName) {
    throw new BadDataError(`series ${describe(labels)} has no metric name (__name__)`, "STRATA_INVALID_METRIC_NAME");
  }
}

function quoteValue(v: string): string {
  return `"${v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`;
}

function formatName(n: string, legacy: (s: string) => boolean): string {
  return legacy(n) ? n : quoteValue(n);
}

/** Prometheus' string form: `name{a="b",c="d"}`, quoting names that are not legacy names. */
export function formatLabels(labels: Labels): string {
  const name = metricNameOf(labels);
  const parts: string[] = [];
  let quotedName = false;
  if (name !== "" && !isLegacyMetricName(name)) {
    parts.push(quoteValue(name));
    quotedName = true;
  }
  for (const l of labels) {
    if (l.name === METRIC_NAME_LABEL) continue;
    parts.push(`${formatName(l.name, isLegacyLabelName)}=${quoteValue(l.value)}`);
  }
  if (quotedName) return `{${parts.join(", ")}}`;
  return parts.length === 0 && name !== "" ? name : `${name}{${parts.join(", ")}}`;
}

// ---- canonical binary encoding -------------------------------------------------------------

const textDecoder = new TextDecoder("utf-8", { fatal: true });

function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function putUvarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Canonical bytes of a metric name (docs/format/metric-name.md):
 * `accountID u32be | projectID u32be | { uvarint(len) name | uvarint(len) value }*` with the
 * labels in canonical order. Equal series always give equal bytes, in every process.
 */
export function encodeMetricName(mn: MetricName): Uint8Array {
  // Buffer.byteLength/write are native UTF-8 paths: no intermediate array per string.
  let size = 8;
  const labels = mn.labels;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    const n = Buffer.byteLength(l.name, "utf8");
    const v = Buffer.byteLength(l.value, "utf8");
    size += uvarintSize(n) + n + uvarintSize(v) + v;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(mn.tenant.accountID >>> 0, 0);
  out.writeUInt32BE(mn.tenant.projectID >>> 0, 4);
  let pos = 8;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    pos = putUvarint(out, pos, Buffer.byteLength(l.name, "utf8"));
    pos += out.write(l.name, pos, "utf8");
    pos = putUvarint(out, pos, Buffer.byteLength(l.value, "utf8"));
    pos += out.write(l.value, pos, "utf8");
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes canonical metric-name bytes; throws BadDataError on truncated or invalid input. */
export function decodeMetricName(buf: Uint8Array): MetricName {
  if (buf.length < 8) {
    throw new BadDataError(`metric name too short: ${buf.length} bytes, want at least 8`, "STRATA_CORRUPT_DATA");
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tenant = { accountID: dv.getUint32(0), projectID: dv.getUint32(4) };
  const labels: Label[] = [];
  let pos = 8;
  const readString = (): string => {
    let n = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (pos >= buf.length || i >= 5) {
        throw new BadDataError(`metric name: bad length varint at byte ${pos}`, "STRATA_CORRUPT_DATA");
      }
      const b = buf[pos++]!;
      n += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) break;
    }
    if (pos + n > buf.length) {
      throw new BadDataError(`metric name: string of ${n} bytes at byte ${pos} overruns ${buf.length}`, "STRATA_CORRUPT_DATA");
    }
    let s: string;
    try {
      s = textDecoder.decode(buf.subarray(pos, pos + n));
    } catch {
      throw new BadDataError(`metric name: invalid UTF-8 at byte ${pos}`, "STRATA_CORRUPT_DATA");
    }
    pos += n;
    return s;
  };
  while (pos < buf.length) {
    const name = readString();
    const value = readString();
    labels.push({ name, value });
  }
  return { tenant, labels };
}

/** xxhash64 of bytes as an unsigned bigint; identical in every process and platform. */
export function xxhash64(bytes: Uint8Array, seed = 0n): bigint {
  return xxhash64Native(bytes, seed);
}

/** xxhash64 of a string's UTF-8 bytes. */
export function xxhash64String(s: string, seed = 0n): bigint {
  return xxhash64Native(s, seed);
}

/** The series hash: xxhash64 of the canonical metric-name bytes. */
export function hashMetricName(mn: MetricName): bigint {
  return xxhash64Native(encodeMetricName(mn), 0n);
}
