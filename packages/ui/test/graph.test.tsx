// @vitest-environment happy-dom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GraphView } from "../src/app/GraphView";
import { buildGraphData } from "../src/app/graphData";

// happy-dom has no canvas: a 2D context that records strokes stands in (the browser test checks
// real pixels). uPlot also needs Path2D and matchMedia.
const strokes = { n: 0 };
const ctx = new Proxy({} as Record<string | symbol, unknown>, {
  get(target, prop) {
    if (prop in target) return target[prop];
    if (prop === "measureText") return () => ({ width: 10 });
    if (prop === "stroke") return () => { strokes.n++; };
    return () => undefined;
  },
  set(target, prop, v) { target[prop] = v; return true; },
});
HTMLCanvasElement.prototype.getContext = (() => ctx) as unknown as HTMLCanvasElement["getContext"];
class FakePath2D { moveTo(): void {} lineTo(): void {} rect(): void {} arc(): void {} closePath(): void {} bezierCurveTo(): void {} addPath(): void {} }
(globalThis as Record<string, unknown>)["Path2D"] ??= FakePath2D;

let host: HTMLElement | undefined;
afterEach(() => {
  if (host) { act(() => render(null, host as HTMLElement)); host.remove(); host = undefined; }
});

function many(n: number) {
  return buildGraphData([Array.from({ length: n }, (_x, i) => ({ metric: { __name__: "m", i: String(i) }, values: [[60, String(i)], [120, String(i + 1)]] as const }))]);
}

describe("GraphView legend", () => {
  it("renders 100 entries at a time, filters, and toggles series", () => {
    host = document.createElement("div");
    document.body.appendChild(host);
    const onZoom = vi.fn();
    act(() => render(<GraphView data={many(250)} tz="UTC" onZoom={onZoom} />, host as HTMLElement));
    const items = () => (host as HTMLElement).querySelectorAll("[data-testid=legend-item]");
    expect((host as HTMLElement).querySelector(".legend-head")?.textContent).toContain("250 series");
    expect(items()).toHaveLength(100);
    act(() => ((host as HTMLElement).querySelector(".legend > button.link") as HTMLElement).click());
    expect(items()).toHaveLength(250);

    const before = strokes.n;
    act(() => (items()[3] as HTMLElement).click());
    expect(items()[3]?.className).toContain("off");
    expect(strokes.n).toBeGreaterThan(before); // redrawn
    expect((host as HTMLElement).textContent).toContain("show all");
    act(() => (items()[3] as HTMLElement).click());
    expect(items()[3]?.className).not.toContain("off");

    // Ctrl+click shows only that series; again shows all.
    act(() => { (items()[5] as HTMLElement).dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true })); });
    expect([...items()].filter((el) => !el.className.includes("off"))).toHaveLength(1);
    act(() => { (items()[5] as HTMLElement).dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true })); });
    expect([...items()].filter((el) => el.className.includes("off"))).toHaveLength(0);

    const filter = (host as HTMLElement).querySelector(".legend-head input") as HTMLInputElement;
    act(() => { filter.value = 'i="24'; filter.dispatchEvent(new Event("input", { bubbles: true })); });
    expect([...items()].map((el) => el.textContent)).toEqual(['1m{i="24"}', '1m{i="240"}', '1m{i="241"}', '1m{i="242"}', '1m{i="243"}', '1m{i="244"}', '1m{i="245"}', '1m{i="246"}', '1m{i="247"}', '1m{i="248"}', '1m{i="249"}']);
  });

  it.each([
    ["data inside the range", many(3), { startMs: 0, endMs: 600_000 }, [0, 600]],
    ["no data at all", buildGraphData([[]]), { startMs: 1_000_000, endMs: 4_600_000 }, [1000, 4600]],
  ])("spans the selected range on the x-axis with %s", async (_name, data, range, want) => {
    host = document.createElement("div");
    document.body.appendChild(host);
    act(() => render(<GraphView data={data} tz="UTC" range={range} onZoom={() => undefined} />, host as HTMLElement));
    // uPlot sets its scales in a microtask after the constructor.
    await act(async () => { await new Promise((r) => setTimeout(r, 0)); });
    const chart = (host as HTMLElement).querySelector("[data-testid=chart]") as HTMLElement;
    expect([Number(chart.dataset["xMin"]), Number(chart.dataset["xMax"])]).toEqual(want);
  });

  it("says when there is nothing to draw and when series were dropped", () => {
    host = document.createElement("div");
    document.body.appendChild(host);
    act(() => render(<GraphView data={buildGraphData([[]])} tz="browser" onZoom={() => undefined} />, host as HTMLElement));
    expect(host.textContent).toContain("No data in this time range.");
    const d = buildGraphData([Array.from({ length: 30 }, (_x, i) => ({ metric: { i: String(i) }, values: [[1, "1"]] as const }))], 10);
    act(() => render(<GraphView data={d} tz="browser" onZoom={() => undefined} />, host as HTMLElement));
    expect(host.textContent).toContain("Showing the first 10 series; 20 more were not drawn.");
  });
});
