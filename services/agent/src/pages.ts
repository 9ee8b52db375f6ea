import { formatDuration, labelsToRecord, type Labels } from "@strata/core";
import type { ScrapeLoop, ScrapeManager } from "@strata/scrape";

/** /api/v1/targets in Prometheus' JSON shape, and the /targets and /service-discovery pages. */

function activeJson(l: ScrapeLoop): Record<string, unknown> {
  const t = l.target;
  return {
    discoveredLabels: labelsToRecord(t.discoveredLabels),
    labels: labelsToRecord(t.labels),
    scrapePool: t.job.jobName,
    scrapeUrl: t.url,
    globalUrl: t.url,
    lastError: l.lastError,
    lastScrape: l.lastScrapeMs === 0 ? "0001-01-01T00:00:00Z" : new Date(l.lastScrapeMs).toISOString(),
    lastScrapeDuration: l.lastDurationMs / 1000,
    health: l.health,
    scrapeInterval: formatDuration(t.scrapeIntervalMs),
    scrapeTimeout: formatDuration(t.scrapeTimeoutMs),
  };
}

export function targetsJson(m: ScrapeManager, state: "any" | "active" | "dropped"): unknown {
  const active = state === "dropped" ? [] : m.activeTargets().map(activeJson);
  const droppedList = m.droppedTargets();
  const dropped = state === "active" ? [] : droppedList.map((d) => ({ discoveredLabels: labelsToRecord(d.discoveredLabels), scrapePool: d.job }));
  const droppedTargetCounts: Record<string, number> = {};
  for (const d of droppedList) droppedTargetCounts[d.job] = (droppedTargetCounts[d.job] ?? 0) + 1;
  return { status: "success", data: { activeTargets: active, droppedTargets: dropped, droppedTargetCounts } };
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function labelsHtml(labels: Labels): string {
  return labels.map((l) => `<span class="l">${esc(l.name)}="${esc(l.value)}"</span>`).join(" ");
}

const STYLE = `<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;width:100%;margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}.up{color:#1a7f37;font-weight:bold}.down{color:#cf222e;font-weight:bold}.unknown{color:#777}.l{display:inline-block;background:#eef;border-radius:3px;padding:0 4px;margin:1px}nav a{margin-right:1em}</style>`;

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)} - strata-agent</title>${STYLE}</head><body><nav><a href="/targets">Targets</a><a href="/service-discovery">Service discovery</a><a href="/api/v1/targets">/api/v1/targets</a><a href="/metrics">/metrics</a></nav><h1>${esc(title)}</h1>${body}</body></html>`;
}

function byJob<T>(items: readonly T[], job: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const i of items) {
    const k = job(i);
    const list = out.get(k) ?? [];
    list.push(i);
    out.set(k, list);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function targetsPage(m: ScrapeManager): string {
  const now = Date.now();
  let body = "";
  for (const [job, loops] of byJob(m.activeTargets(), (l) => l.target.job.jobName)) {
    const up = loops.filter((l) => l.health === "up").length;
    body += `<h2 id="job-${esc(job)}">${esc(job)} (${up}/${loops.length} up)</h2><table><tr><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Duration</th><th>Samples</th><th>Error</th></tr>`;
    for (const l of loops.sort((a, b) => (a.target.url < b.target.url ? -1 : 1))) {
      const ago = l.lastScrapeMs === 0 ? "never" : `${((now - l.lastScrapeMs) / 1000).toFixed(1)}s ago`;
      body += `<tr><td><a href="${esc(l.target.url)}">${esc(l.target.url)}</a></td><td class="${l.health}">${l.health.toUpperCase()}</td><td>${labelsHtml(l.target.labels)}</td><td>${ago}</td><td>${(l.lastDurationMs / 1000).toFixed(3)}s</td><td>${l.lastSamples}</td><td>${esc(l.lastError)}</td></tr>`;
    }
    body += "</table>";
  }
  if (body === "") body = "<p>No targets: check -promscrape.config.</p>";
  return page("Targets", body);
}

export function discoveryPage(m: ScrapeManager): string {
  let body = "";
  const active = byJob(m.activeTargets(), (l) => l.target.job.jobName);
  const dropped = byJob(m.droppedTargets(), (d) => d.job);
  for (const job of [...new Set([...active.keys(), ...dropped.keys()])].sort()) {
    const a = active.get(job) ?? [];
    const d = dropped.get(job) ?? [];
    body += `<h2>${esc(job)} (${a.length} active / ${a.length + d.length} discovered)</h2><table><tr><th>Discovered labels</th><th>Target labels</th></tr>`;
    for (const l of a) body += `<tr><td>${labelsHtml(l.target.discoveredLabels)}</td><td>${labelsHtml(l.target.labels)}</td></tr>`;
    for (const x of d) body += `<tr><td>${labelsHtml(x.discoveredLabels)}</td><td>Dropped: ${esc(x.reason)}</td></tr>`;
    body += "</table>";
  }
  if (body === "") body = "<p>Nothing discovered.</p>";
  return page("Service discovery", body);
}
