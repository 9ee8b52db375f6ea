import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Api, type FetchFn } from "../src/app/api";
import { Completer, metricMatch } from "../src/app/completer";
import { completionContext } from "../src/app/promql";
import { decodeState, TABS } from "../src/app/state";

function server(): { fetch: FetchFn; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    fetch: async (url) => {
      urls.push(url);
      const u = new URL(url, "http://x");
      const data = u.pathname.endsWith("/labels") ? ["__name__", "code", "job"]
        : u.pathname.includes("/label/__name__/") ? ["go_goroutines", "http_requests_total", "process_cpu_seconds_total"]
          : ["api", "web"];
      return { status: 200, text: async () => JSON.stringify({ status: "success", data }) };
    },
  };
}

const at = (s: string) => completionContext(s.replace("|", ""), s.indexOf("|"));

describe("Completer", () => {
  it.each([
    ["http|", ["http_requests_total"]],
    ["proc|", ["process_cpu_seconds_total"]],
    ["histogram_q|", ["histogram_quantile"]],
    ["with|", ["without"]],
    ["http_requests_total{|", ["code", "job"]],
    ['http_requests_total{job="|', ["api", "web"]],
    ["foo[5|", []],
    ["sum(go_goroutines)|", []],
    ["sum(go_goroutines) |", ["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "atan2"]],
    ["sum(go_goroutines) o|", ["on", "offset", "or", "without", "ignoring", "group_left", "group_right", "bool"]],
    ["go_goroutines|", ["go_goroutines"]],
  ])("%s", async (src, want) => {
    const c = new Completer(new Api("/b/", server().fetch));
    expect((await c.suggest(at(src))).map((s) => s.label)).toEqual(want);
  });

  it("caches per URL for a minute and scopes by metric", async () => {
    let now = 0;
    const srv = server();
    const c = new Completer(new Api("/b/", srv.fetch), () => now);
    await c.suggest(at("http_requests_total{|"));
    await c.suggest(at("http_requests_total{j|"));
    await c.suggest(at("go_goroutines{|"));
    expect(srv.urls).toEqual(["/b/labels?match%5B%5D=http_requests_total", "/b/labels?match%5B%5D=go_goroutines"]);
    now = 61_000;
    await c.suggest(at("http_requests_total{|"));
    expect(srv.urls).toHaveLength(3);
  });

  it("offers nothing rather than failing when the API is down", async () => {
    const c = new Completer(new Api("/b/", async () => { throw new TypeError("down"); }));
    expect((await c.suggest(at("http_requests_total{|"))).length).toBe(0);
    expect((await c.suggest(at("rat|"))).map((s) => s.label)).toEqual(["rate", "irate", "limit_ratio"]);
  });

  it.each([["up", "up"], ["a.b", '{__name__="a.b"}'], ["", undefined], [undefined, undefined]])("metricMatch(%j)", (m, want) => {
    expect(metricMatch(m)).toBe(want);
  });
});

describe("decodeState on arbitrary URLs", () => {
  it("never throws and always yields a usable state", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const st = decodeState(s);
        expect(TABS).toContain(st.tab);
        expect(st.queries.length).toBeGreaterThan(0);
        expect(st.card.topN).toBeGreaterThan(0);
        expect((st.from === undefined) === (st.to === undefined)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
