import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadDataError, checkRawPath, formatDuration, formatTenant, parseDuration, parseTenant, parseTimestamp } from "@strata/core";

describe("parseTenant", () => {
  it.each([
    ["0", 0, 0],
    ["42", 42, 0],
    ["1:2", 1, 2],
    ["4294967295:4294967295", 4294967295, 4294967295],
    // Leading zeros name the same tenant, as VictoriaMetrics' strconv.ParseUint reads them.
    ["01", 1, 0],
    ["0001:002", 1, 2],
    ["000000000004294967295", 4294967295, 0],
  ])("%s", (s, accountID, projectID) => {
    expect(parseTenant(s)).toEqual({ accountID, projectID });
    expect(parseTenant(formatTenant({ accountID, projectID }))).toEqual({ accountID, projectID });
  });
  it.each([
    ["", /accountID must be a decimal uint32, got ""/],
    ["a", /accountID must be a decimal uint32, got "a"/],
    ["-1", /accountID must be a decimal uint32/],
    ["1:", /projectID must be a decimal uint32, got ""/],
    ["1:2:3", /want accountID or accountID:projectID/],
    ["4294967296", /exceeds the uint32 maximum/],
    ["1:99999999999", /projectID 99999999999 exceeds the uint32 maximum/],
    [" 1", /accountID must be/],
    ["+1", /accountID must be a decimal uint32/],
    ["0x1", /accountID must be a decimal uint32/],
    ["%31", /percent-encoded tenants are not accepted/],
    ["1%3A2", /percent-encoded tenants are not accepted/],
    ["00000000099999999999", /exceeds the uint32 maximum/],
  ])("rejects %j", (s, msg) => {
    expect(() => parseTenant(s)).toThrow(BadDataError);
    expect(() => parseTenant(s)).toThrow(msg);
  });
});

describe("checkRawPath", () => {
  it.each([
    ["/select/1/prometheus/api/v1/query?query=up", undefined],
    ["/select/1/prometheus/api/v1/query?query=a/../b", undefined],
    ["/select/1.5/prometheus/", undefined],
    ["/select/2/../1/prometheus/api/v1/query", /"\." and "\.\." segments/],
    ["/select/2/%2e%2E/1/prometheus/api/v1/query", /"\." and "\.\." segments/],
    ["/select/2/.%2e/1/prometheus/", /"\." and "\.\." segments/],
    ["/select/./1/prometheus/", /"\." and "\.\." segments/],
    ["/insert/2/..", /"\." and "\.\." segments/],
    ["/select/2\\..\\1/prometheus/", /backslashes are not allowed/],
  ])("%j", (url, msg) => {
    if (msg === undefined) expect(() => checkRawPath(url)).not.toThrow();
    else expect(() => checkRawPath(url)).toThrow(msg);
  });
});

describe("parseDuration", () => {
  it.each([
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["100ms", 100],
    ["1d", 86_400_000],
    ["2w", 1_209_600_000],
    ["1y", 31_536_000_000],
    ["1.5", 1500],
    ["30", 30_000],
    ["-5m", -300_000],
    ["1h0m1s", 3_601_000],
    ["1m30s500ms", 90_500],
  ])("%s = %d ms", (s, ms) => expect(parseDuration(s)).toBe(ms));

  it.each(["", "5", "m", "5x", "1m1h", "1h1h", "5 m", "abc", "1e400"].filter((s) => s !== "5"))("rejects %j", (s) => {
    expect(() => parseDuration(s)).toThrow(BadDataError);
  });

  it("formatDuration round-trips whole milliseconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 31_536_000_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});

describe("parseTimestamp", () => {
  const now = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  it.each([
    ["1700000000", 1_700_000_000_000],
    ["1700000000.123", 1_700_000_000_123],
    ["1700000000123", 1_700_000_000_123], // milliseconds, as VictoriaMetrics accepts
    ["1700000000123456", 1_700_000_000_123.456], // microseconds
    ["1700000000123456789", 1_700_000_000_123.4568], // nanoseconds (float precision)
    ["4", 4000], // Grafana's "Save & test" sends time=4
    ["2023-11-14T22:13:20Z", 1_700_000_000_000],
    ["2023-11-14T22:13:20.5Z", 1_700_000_000_500],
    ["2023-11-14T23:13:20+01:00", 1_700_000_000_000],
    ["2023-11-14", Date.UTC(2023, 10, 14)],
    ["2023-11", Date.UTC(2023, 10, 1)],
    ["now", now],
    ["now-1h", now - 3_600_000],
    ["now+5m", now + 300_000],
    ["-1h", now - 3_600_000],
  ])("%s", (s, want) => expect(parseTimestamp(s, now)).toBeCloseTo(want, 3));

  it.each([
    ["1.001", 1001],
    ["1.0005", 1000], // the fraction is 0.00049999… in binary, as in Go
    ["-1.0005", -1000],
    ["-1.0015", -1002], // half away from zero (Go math.Round)
    ["0.1", 100],
    ["1700000000.999", 1_700_000_000_999],
  ])("seconds %s are whole milliseconds (%d), as in Prometheus", (s, want) => expect(parseTimestamp(s, now)).toBe(want));

  it.each(["", "yesterday", "2023-13-01", "2023-02-30", "now-", "now*2", "12:00", "2023-11-14T25:00:00Z"])("rejects %j", (s) => {
    expect(() => parseTimestamp(s, now)).toThrow(BadDataError);
  });

  it("random input only throws BadDataError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (s) => {
        try {
          parseTimestamp(s, now);
          parseDuration(s);
        } catch (err) {
          expect(err).toBeInstanceOf(BadDataError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
