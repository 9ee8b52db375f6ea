import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BadDataError,
  compareStrings,
  decodeMetricName,
  encodeMetricName,
  formatLabels,
  hashMetricName,
  labelsFromRecord,
  normalizeLabels,
  validateLabels,
  xxhash64,
  xxhash64Small,
  type Labels,
} from "@strata/core";

const L = (rec: Record<string, string>): Labels => labelsFromRecord(rec);

describe("normalizeLabels", () => {
  it.each([
    [{ b: "2", a: "1", __name__: "m" }, ["__name__", "a", "b"]],
    [{ z: "", a: "x", __name__: "m" }, ["__name__", "a"]],
    [{ B: "1", a: "1", _: "1" }, ["B", "_", "a"]],
  ])("%j sorts to %j and drops empty values", (rec, names) => {
    expect(L(rec).map((l) => l.name)).toEqual(names);
  });

  it("sorts by UTF-8 byte order, not UTF-16 code units", () => {
    const astral = "\u{1F600}"; // surrogate pair in UTF-16, 4 bytes in UTF-8
    const bmpHigh = "\uFF01"; // U+FF01 sorts before U+1F600 in UTF-8 order
    expect(compareStrings(bmpHigh, astral)).toBeLessThan(0);
    expect(compareStrings(astral, bmpHigh)).toBeGreaterThan(0);
    const utf8 = (s: string) => Buffer.from(s, "utf8");
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        expect(Math.sign(compareStrings(a, b))).toBe(Math.sign(Buffer.compare(utf8(a), utf8(b))));
      }),
      { numRuns: 500 },
    );
  });
});

describe("validateLabels", () => {
  const ok = (rec: Record<string, string>) => () => validateLabels(L(rec));
  it.each([
    [{ __name__: "up", job: "a" }],
    [{ __name__: "http.requests.total", "service.name": "x" }], // UTF-8 names are valid in Prometheus 3
    [{ __name__: "ü", "ß": "ok" }],
  ])("accepts %j", (rec) => expect(ok(rec)).not.toThrow());

  const bad = (labels: Labels, limits: Parameters<typeof validateLabels>[1], code: string, msg: RegExp) => {
    try {
      validateLabels(labels, limits);
    } catch (err) {
      expect(err).toBeInstanceOf(BadDataError);
      expect((err as BadDataError).code).toBe(code);
      expect((err as BadDataError).message).toMatch(msg);
      return;
    }
    throw new Error("expected an error");
  };
  it.each([
    [L({ job: "a" }), {}, "STRATA_INVALID_METRIC_NAME", /no metric name/],
    [normalizeLabels([{ name: "__name__", value: "m" }, { name: "a", value: "1" }, { name: "a", value: "2" }]), {}, "STRATA_DUPLICATE_LABEL", /duplicate label name "a"/],
    [L({ __name__: "m", a: "1", b: "2" }), { maxLabels: 2 }, "STRATA_TOO_MANY_LABELS", /3 labels, more than the limit of 2/],
    [L({ __name__: "m", abcdef: "1" }), { maxLabelNameLen: 3 }, "STRATA_LABEL_TOO_LONG", /maxLabelNameLen=3/],
    [L({ __name__: "m", a: "123456" }), { maxLabelValueLen: 3 }, "STRATA_LABEL_TOO_LONG", /value of label "a"/],
    [L({ __name__: "bad-name" }), { legacyNames: true }, "STRATA_INVALID_METRIC_NAME", /invalid metric name/],
    [L({ __name__: "m", "a.b": "1" }), { legacyNames: true }, "STRATA_INVALID_LABEL_NAME", /invalid label name "a.b"/],
    [L({ __name__: "m", "\uD800": "1" }), {}, "STRATA_INVALID_LABEL_NAME", /not valid UTF-8/],
    [L({ __name__: "m", a: "\uDC00x" }), {}, "STRATA_INVALID_LABEL_VALUE", /not valid UTF-8/],
  ] as const)("rejects %#", (labels, limits, code, msg) => bad(labels, limits, code, msg));
});

describe("formatLabels", () => {
  it.each([
    [{ __name__: "up" }, "up"],
    [{ __name__: "up", job: "a" }, 'up{job="a"}'],
    [{ job: "a\"b\\c\nd" }, '{job="a\\"b\\\\c\\nd"}'],
    [{ __name__: "my.metric", "a.b": "x" }, '{"my.metric", "a.b"="x"}'],
  ])("%j → %s", (rec, want) => expect(formatLabels(L(rec))).toBe(want));
});

describe("canonical metric names", () => {
  const labelArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 }), { maxKeys: 8 });
  const tenantArb = fc.record({ accountID: fc.nat({ max: 0xffffffff }), projectID: fc.nat({ max: 0xffffffff }) });

  it("round-trips and is independent of input order", () => {
    fc.assert(
      fc.property(tenantArb, labelArb, (tenant, rec) => {
        const labels = L(rec);
        const bytes = encodeMetricName({ tenant, labels });
        expect(decodeMetricName(bytes)).toEqual({ tenant, labels });
        const reversed = labelsFromRecord(Object.fromEntries(Object.entries(rec).reverse()));
        expect(encodeMetricName({ tenant, labels: reversed })).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it("differs between tenants", () => {
    const labels = L({ __name__: "up" });
    const a = hashMetricName({ tenant: { accountID: 0, projectID: 0 }, labels });
    const b = hashMetricName({ tenant: { accountID: 0, projectID: 1 }, labels });
    expect(a).not.toBe(b);
  });

  it("hashes with xxhash64 (known vectors)", () => {
    // Reference values of XXH64 with seed 0.
    expect(xxhash64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(xxhash64(new TextEncoder().encode("a"))).toBe(0xd24ec4f1a98c6e5bn);
    expect(hashMetricName({ tenant: { accountID: 1, projectID: 2 }, labels: L({ __name__: "up", job: "x" }) })).toBe(
      xxhash64(encodeMetricName({ tenant: { accountID: 1, projectID: 2 }, labels: L({ job: "x", __name__: "up" }) })),
    );
  });

  it("xxhash64Small (pure JS) gives the native addon's values", () => {
    expect(xxhash64Small(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(xxhash64Small(new TextEncoder().encode("a"))).toBe(0xd24ec4f1a98c6e5bn);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.nat(7), (bytes, seed, skip) => {
        const sub = bytes.subarray(Math.min(skip, bytes.length));
        expect(xxhash64Small(sub, seed)).toBe(xxhash64(sub, seed));
      }),
      { numRuns: 500 },
    );
  });

  it("decoding random or mutated bytes only throws BadDataError", () => {
    const valid = encodeMetricName({ tenant: { accountID: 7, projectID: 9 }, labels: L({ __name__: "x", a: "b" }) });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
        const m = valid.slice();
        m[i] = b;
        return m;
      })), (bytes) => {
        try {
          decodeMetricName(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(BadDataError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
