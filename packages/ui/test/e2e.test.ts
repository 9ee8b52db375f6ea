// Browser end-to-end: Debian's chromium driven by playwright-core against a real backend (see
// e2e-backends.ts). Screenshots go to $UI_SCREENSHOTS_DIR (docs/ui when regenerating the docs).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uiDistDir } from "@strata/ui";
import { clusterBuilt, demoData, hasCommand, manySeries, repoRoot, selectBuilt, startCluster, startPromql, startVictoriaMetrics, type Backend } from "./e2e-backends";

const CI = process.env["CI"] === "true";
const CHROMIUM = "/usr/bin/chromium";

interface Target { readonly name: string; readonly start: () => Promise<Backend>; readonly primary: boolean }

/**
 * Where the UI runs: the Strata cluster when services/{storage,insert,select}/dist are built,
 * else @strata/promql's engine behind the same API; plus VictoriaMetrics single-node (the
 * reference select mirrors) when Debian's victoria-metrics is installed.
 * STRATA_UI_E2E_BACKEND=cluster|promql|vm runs only that one.
 */
function plan(): { targets: Target[] } | { skip: string } {
  const missing: string[] = [];
  if (!existsSync(CHROMIUM)) missing.push("chromium (apt-get install chromium)");
  if (!existsSync(join(uiDistDir, "index.html"))) missing.push("the built UI (pnpm --filter @strata/ui build)");
  if (missing.length > 0) {
    if (CI) throw new Error(`UI e2e cannot run: missing ${missing.join(", ")}`);
    return { skip: `missing ${missing.join(", ")}` };
  }
  const all = {
    cluster: { name: "a Strata cluster", start: startCluster },
    promql: { name: "the @strata/promql engine", start: startPromql },
    vm: { name: "VictoriaMetrics", start: startVictoriaMetrics },
  };
  const forced = process.env["STRATA_UI_E2E_BACKEND"];
  if (forced === "cluster" || forced === "promql" || forced === "vm") return { targets: [{ ...all[forced], primary: true }] };
  const targets: Target[] = [{ ...(clusterBuilt() ? all.cluster : all.promql), primary: true }];
  if (!clusterBuilt() && selectBuilt()) console.warn("UI e2e: services/select is built but storage or insert is not; using the in-process engine");
  if (hasCommand("victoria-metrics")) targets.push({ ...all.vm, primary: false });
  return { targets };
}

const p = plan();
if ("skip" in p) {
  console.warn(`skipping UI browser e2e: ${p.skip}`);
  describe.skip(`web UI in a real browser (skipped: ${p.skip})`, () => {
    it("opens the UI in chromium", () => undefined);
  });
}
const targets = "skip" in p ? [] : p.targets;

if (targets.length > 0) describe.each(targets)("web UI in a real browser against $name", (target) => {
  let backend: Backend;
  let browser: Browser;
  let page: Page;
  const keepShots = process.env["UI_SCREENSHOTS_DIR"] !== undefined;
  const shots = keepShots ? resolve(repoRoot, process.env["UI_SCREENSHOTS_DIR"] ?? "") : mkdtempSync(join(tmpdir(), "strata-ui-shots-"));
  // Screenshots come from the primary backend only (the names would collide).
  const shot = async (name: string, pg: Page = page): Promise<void> => {
    if (target.primary) await pg.screenshot({ path: join(shots, `${name}.png`) });
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    backend = await target.start();
    console.log(`UI e2e backend: ${backend.kind}; screenshots in ${shots}`);
    await backend.load(demoData(Date.now()));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on("pageerror", (e) => console.error("page error:", e));
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
    if (!keepShots) rmSync(shots, { recursive: true, force: true });
  });

  /** Pixels of the chart canvas in saturated (series) colours: axes and grid are grey. */
  const colouredPixels = (pg: Page): Promise<number> => pg.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>(".chart canvas");
    const ctx = c?.getContext("2d");
    if (!c || !ctx) return -1;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i] ?? 0, g = d[i + 1] ?? 0, b = d[i + 2] ?? 0, a = d[i + 3] ?? 0;
      if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  });

  it("finds data with autocomplete, graphs it, tables it, shows JSON, explores cardinality and shares a link", async () => {
    await page.goto(`${backend.origin}/select/0/vmui/`);
    const editor = page.getByTestId("query-0");
    await editor.click();

    // Function + metric name from autocomplete.
    await page.keyboard.type("rate(http_req", { delay: 20 });
    const sugg = page.getByTestId("suggestions");
    await expect.poll(() => sugg.locator("li").allTextContents(), { timeout: 10_000 }).toContain("mhttp_requests_total");
    await shot("autocomplete");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    // Label name, then a label value scoped by the metric.
    await page.keyboard.type("{jo", { delay: 20 });
    await expect.poll(() => sugg.locator("li").allTextContents(), { timeout: 10_000 }).toEqual(["ljob"]);
    await page.keyboard.press("Tab");
    await page.keyboard.type("=", { delay: 20 });
    await expect.poll(() => sugg.locator("li").allTextContents(), { timeout: 10_000 }).toEqual(["vapi", "vweb", "vworker"]);
    await sugg.locator("li", { hasText: "api" }).click();
    await page.keyboard.type("}[5m])", { delay: 20 });
    await expect.poll(() => editor.inputValue()).toBe('rate(http_requests_total{job="api"}[5m])');
    await page.keyboard.press("Control+Enter");

    // Graph: 3 instances × 2 codes, drawn and listed.
    const legend = page.getByTestId("legend-item");
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(6);
    await expect.poll(() => colouredPixels(page), { timeout: 5_000 }).toBeGreaterThan(500);
    expect(await legend.first().textContent()).toContain('code="200"');
    await page.mouse.move(640, 330);
    await shot("graph");
    // Clicking a legend entry hides that series.
    const before = await colouredPixels(page);
    await legend.nth(0).click();
    await expect.poll(() => legend.nth(0).getAttribute("class")).toMatch(/off/);
    expect(await colouredPixels(page)).toBeLessThan(before);
    await legend.nth(0).click();

    // Table: instant query at the end of the range, sortable.
    await page.getByTestId("tab-table").click();
    const rows = page.getByTestId("result-table").locator("tbody tr");
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(6);
    await page.getByTestId("sort-value").click();
    const values = (await rows.locator("td:nth-child(3)").allTextContents()).map(Number);
    expect(values).toEqual([...values].sort((a, b) => b - a));
    await shot("table");

    // JSON: the raw answer.
    await page.getByTestId("tab-json").click();
    await expect.poll(() => page.getByTestId("json").first().textContent()).toContain('"resultType": "matrix"');
    await shot("json");

    // A parse error is shown with its position.
    await page.getByTestId("tab-graph").click();
    await editor.fill("sum(rate(http_requests_total[5m])))");
    await page.keyboard.press("Control+Enter");
    await expect.poll(() => page.getByTestId("error").first().textContent().catch(() => ""), { timeout: 10_000 }).toContain("parse");
    // Prometheus-style messages carry "line:col: parse error"; VictoriaMetrics' do not.
    const msg = (await page.getByTestId("error").first().textContent()) ?? "";
    expect(await page.locator(".err-pos").count()).toBe(/\d+:\d+: parse error/.test(msg) ? 1 : 0);
    await shot("error");

    // Cardinality explorer, click through to a query.
    await page.getByTestId("tab-cardinality").click();
    await expect.poll(() => page.getByTestId("card-total").textContent().catch(() => ""), { timeout: 10_000 }).toContain("series");
    const metricLinks = page.getByTestId("card-metrics").locator("a");
    await expect.poll(() => metricLinks.allTextContents()).toContain("node_load1");
    await shot("cardinality");
    await metricLinks.filter({ hasText: "node_load1" }).click();
    await expect.poll(() => editor.inputValue()).toBe("node_load1");
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(7);

    // Zoom by dragging over the chart: the range becomes absolute and lands in the URL.
    const box = await page.getByTestId("chart").locator(".u-over").boundingBox();
    if (!box) throw new Error("no chart overlay");
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await expect.poll(() => new URL(page.url()).searchParams.get("from")).not.toBeNull();
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(7);

    // The link reproduces the view in a fresh page.
    const link = page.url();
    const again = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await again.goto(link);
    await expect.poll(() => again.getByTestId("query-0").inputValue()).toBe("node_load1");
    expect(await again.getByTestId("tab-graph").getAttribute("aria-selected")).toBe("true");
    await expect.poll(() => again.getByTestId("legend-item").count(), { timeout: 15_000 }).toBe(7);
    expect(await again.getByTestId("from").inputValue()).toBe(await page.getByTestId("from").inputValue());
    expect(await colouredPixels(again)).toBeGreaterThan(500);
    await again.close();

    // Top and active queries.
    await page.getByTestId("tab-queries").click();
    await expect.poll(() => page.getByTestId("active-queries").isVisible()).toBe(true);
    await expect.poll(() => page.getByTestId("top-count").locator("a").count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot("queries");
  });

  it("Enter runs what was typed; arrow-down then Enter accepts; no metric names after ')'; the x-axis spans the selected range", async () => {
    await page.goto(`${backend.origin}/select/0/vmui/?tab=graph&range=3h`);
    const editor = page.getByTestId("query-0");
    const sugg = page.getByTestId("suggestions");
    const legend = page.getByTestId("legend-item");
    const items = (): Promise<string[]> => sugg.locator("li").allTextContents().catch(() => []);
    await editor.click();

    // `up`⏎: the list is open with the exact match first, and Enter runs `up` itself.
    await page.keyboard.type("up", { delay: 20 });
    await expect.poll(items, { timeout: 10_000 }).toContain("mup");
    expect((await items())[0]).toBe("mup");
    await page.keyboard.press("Enter");
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(7);
    expect(await editor.inputValue()).toBe("up");

    // The x-axis spans the selected 3h although the data covers only the last hour.
    const chart = page.getByTestId("chart");
    await expect.poll(async () => Number(await chart.getAttribute("data-x-max")) - Number(await chart.getAttribute("data-x-min")), { timeout: 10_000 }).toBe(3 * 3600);
    expect(Math.abs(Number(await chart.getAttribute("data-x-max")) - Date.now() / 1000)).toBeLessThan(120);

    // `sum(up)`⏎: nothing is offered right after `)`, and Enter runs the query as typed.
    await editor.fill("");
    await page.keyboard.type("sum(up)", { delay: 20 });
    await page.waitForTimeout(600); // longer than the suggestion debounce
    expect(await sugg.count()).toBe(0);
    await page.keyboard.press("Enter");
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(1);
    expect(await editor.inputValue()).toBe("sum(up)");

    // Arrow-down moves into the list; Enter then accepts the highlighted suggestion.
    await editor.fill("");
    await page.keyboard.type("node_lo", { delay: 20 });
    await expect.poll(items, { timeout: 10_000 }).toEqual(["mnode_load1"]);
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await expect.poll(() => editor.inputValue()).toBe("node_load1");
    await page.waitForTimeout(500);
    expect(await legend.count()).toBe(1); // accepted, not run: the graph still shows sum(up)
  });

  it.runIf(target.primary)("draws 1000 series without freezing: legend renders a page at a time, tooltip still follows the cursor", async () => {
    const now = Date.now();
    await backend.load(manySeries(now, 1000));
    const ta = Date.now();
    const direct = await fetch(`${backend.origin}/select/0/prometheus/api/v1/query_range?query=ui_load_test&start=${(now - 1_800_000) / 1000}&end=${now / 1000}&step=5`);
    const nSeries = ((await direct.json()) as { data: { result: unknown[] } }).data.result.length;
    const apiMs = Date.now() - ta;
    expect(nSeries).toBe(1000);
    await page.goto(`${backend.origin}/select/0/vmui/?tab=graph&q=ui_load_test&range=30m`);
    const t0 = Date.now();
    await expect.poll(() => page.getByTestId("legend").locator(".legend-head").textContent().catch(() => ""), { timeout: 30_000 }).toContain("1000 series");
    await expect.poll(() => colouredPixels(page), { timeout: 10_000 }).toBeGreaterThan(5000);
    const renderMs = Date.now() - t0;
    expect(await page.getByTestId("legend-item").count()).toBe(100);
    // The page still answers: a frame and a tooltip at the cursor.
    const box = await page.getByTestId("chart").locator(".u-over").boundingBox();
    if (!box) throw new Error("no chart overlay");
    const t1 = Date.now();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3);
    await expect.poll(() => page.getByTestId("tooltip").isVisible(), { timeout: 10_000 }).toBe(true);
    const hoverMs = Date.now() - t1;
    const drawMs = await page.getByTestId("chart").getAttribute("data-draw-ms");
    const frameMs = await page.evaluate(() => { const s = performance.now(); return new Promise<number>((r) => requestAnimationFrame(() => r(performance.now() - s))); });
    console.log(`UI e2e, 1000 series over 30m (auto step): API alone ${apiMs} ms, page load+query+draw ${renderMs} ms (uPlot create ${drawMs} ms), tooltip after hover ${hoverMs} ms, next frame ${frameMs.toFixed(1)} ms`);
    await shot("graph-1000-series");
  });
});
