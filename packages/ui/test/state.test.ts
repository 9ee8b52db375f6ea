import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  apiBasePath, decodeState, DEFAULT_STATE, encodeState, isValidTenant, loadHistory, pathForTenant, pushHistory, tenantOf,
  timeWindow, TABS, type AppState,
} from "../src/app/state";
import { autoStepMs, formatDuration, formatTime, parseDurationMs, parseTimeInput } from "../src/app/time";

describe("durations and times", () => {
  it.each([
    ["5m", 300_000], ["1h30m", 5_400_000], ["30d", 2_592_000_000], ["500ms", 500], ["15", 15_000], ["1.5", 1_500],
    ["", undefined], ["5x", undefined], ["m", undefined], ["-5m", undefined],
  ])("parseDurationMs(%j) = %j", (s, want) => {
    expect(parseDurationMs(s)).toBe(want);
  });
  it.each([[5_400_000, "1h30m"], [0, "0s"], [86_400_000 + 1, "1d1ms"], [15_000, "15s"]])("formatDuration(%d) = %s", (ms, want) => {
    expect(formatDuration(ms)).toBe(want);
  });
  it.each([
    ["2026-11-21T10:00:00Z", Date.UTC(2026, 10, 21, 10)],
    ["2026-11-21 10:00", Date.UTC(2026, 10, 21, 10)],
    ["1700000000", 1_700_000_000_000],
    ["2026-11-21T10:00:00+02:00", Date.UTC(2026, 10, 21, 8)],
    ["yesterday", undefined],
  ])("parseTimeInput(%j)", (s, want) => {
    expect(parseTimeInput(s)).toBe(want);
  });
  it.each([
    ["2026-11-21 10:00:00", "Asia/Tokyo", Date.UTC(2026, 10, 21, 1)],
    ["2026-07-01 12:30", "Europe/Berlin", Date.UTC(2026, 6, 1, 10, 30)],
    ["2026-01-15 12:30:05", "America/New_York", Date.UTC(2026, 0, 15, 17, 30, 5)],
    ["2026-11-21T10:00:00Z", "Asia/Tokyo", Date.UTC(2026, 10, 21, 10)],
  ])("parseTimeInput(%j, %s) reads the wall clock in that zone", (s, tz, want) => {
    expect(parseTimeInput(s, tz)).toBe(want);
  });
  it("formatTime and parseTimeInput round-trip in any zone", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e12 }), fc.constantFrom("UTC", "Asia/Kolkata", "America/Los_Angeles", "Australia/Lord_Howe"), (ms, tz) => {
        const sec = Math.floor(ms / 1000) * 1000;
        const back = parseTimeInput(formatTime(sec, tz), tz);
        // A wall-clock time repeated at a DST fall-back may map to either instant.
        expect(back === sec || Math.abs((back ?? 0) - sec) <= 3_600_000).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
  it("formats in the asked zone", () => {
    const t = Date.UTC(2026, 10, 21, 23, 5, 9);
    expect(formatTime(t, "UTC")).toBe("2026-11-21 23:05:09");
    expect(formatTime(t, "Asia/Tokyo")).toBe("2026-11-22 08:05:09");
  });
  it.each([[3_600_000, 1000, 10_000], [300_000, 1000, 1_000], [30 * 86_400_000, 1000, 7_200_000], [86_400_000, 1000, 300_000]])(
    "autoStepMs(%d, %d) = %d", (range, width, want) => {
      expect(autoStepMs(range, width)).toBe(want);
    });
});

describe("URL state", () => {
  it("round-trips any state through the query string", () => {
    const arbState = fc.record({
      tab: fc.constantFrom(...TABS),
      queries: fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 4 }),
      range: fc.constantFrom("5m", "1h", "30d"),
      abs: fc.option(fc.tuple(fc.integer({ min: 0, max: 2e12 }), fc.integer({ min: 1, max: 1e10 })), { nil: undefined }),
      step: fc.constantFrom("auto", "15s", "1m"),
      refresh: fc.constantFrom("off", "5s", "1m"),
      tz: fc.constantFrom("browser", "UTC", "Europe/Berlin"),
      card: fc.record({
        topN: fc.integer({ min: 1, max: 1000 }),
        date: fc.constantFrom("", "2026-11-21"),
        focusLabel: fc.constantFrom("", "job", "instance"),
        match: fc.string({ maxLength: 20 }),
      }),
    }).map(({ abs, ...r }): AppState => ({ ...r, from: abs?.[0], to: abs === undefined ? undefined : abs[0] + abs[1] }));
    fc.assert(
      fc.property(arbState, (s) => {
        const back = decodeState(encodeState(s));
        const want = s.tab === "cardinality" ? s : { ...s, card: DEFAULT_STATE.card };
        expect(back).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it("falls back to defaults on garbage", () => {
    expect(decodeState("?tab=nope&range=forever&step=x&refresh=2h&topN=-1&date=today")).toEqual(DEFAULT_STATE);
  });

  it("keeps several queries in order", () => {
    const s = decodeState("?q=up&q=" + encodeURIComponent('rate(x{a="b"}[5m])'));
    expect(s.queries).toEqual(["up", 'rate(x{a="b"}[5m])']);
  });

  it("computes the window from a relative or an absolute range", () => {
    expect(timeWindow({ ...DEFAULT_STATE, range: "5m" }, 1_000_000)).toEqual({ start: 700_000, end: 1_000_000 });
    expect(timeWindow({ ...DEFAULT_STATE, from: 5, to: 9 }, 1_000_000)).toEqual({ start: 5, end: 9 });
  });
});

describe("tenant in the path", () => {
  it.each([
    ["/select/0/vmui/", "0", "/select/0/prometheus/api/v1/", "/select/7:2/vmui/"],
    ["/select/12:3/vmui/", "12:3", "/select/12:3/prometheus/api/v1/", "/select/7:2/vmui/"],
    ["/proxy/x/select/5/vmui/index.html", "5", "/proxy/x/select/5/prometheus/api/v1/", "/proxy/x/select/7:2/vmui/index.html"],
    ["/", "0", "/select/0/prometheus/api/v1/", "/select/7:2/vmui/"],
  ])("%s", (path, tenant, api, switched) => {
    expect(tenantOf(path)).toBe(tenant);
    expect(apiBasePath(path)).toBe(api);
    expect(pathForTenant(path, "7:2")).toBe(switched);
  });
  it.each([["0", true], ["1:2", true], ["4294967295:4294967295", true], ["4294967296", false], ["a", false], ["1:", false], ["", false]])(
    "isValidTenant(%j) = %j", (t, ok) => {
      expect(isValidTenant(t)).toBe(ok);
    });
});

describe("history", () => {
  it("keeps the most recent first, unique, bounded", () => {
    const m = new Map<string, string>();
    const store = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    pushHistory(store, ["a", "b"]);
    pushHistory(store, ["a", " ", "c"]);
    expect(loadHistory(store)).toEqual(["c", "a", "b"]);
    for (let i = 0; i < 100; i++) pushHistory(store, [`q${i}`]);
    expect(loadHistory(store)).toHaveLength(50);
    m.set("strata.queryHistory", "{broken");
    expect(loadHistory(store)).toEqual([]);
  });
});
