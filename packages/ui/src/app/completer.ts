// Fetches completion candidates from the select API, cached per URL for a minute, and merges
// them with the static function and keyword lists.
import type { Api } from "./api";
import { FUNCTIONS, KEYWORDS, rankSuggestions, type CompletionContext, type Suggestion } from "./promql";

const TTL_MS = 60_000;

export class Completer {
  private readonly cache = new Map<string, { at: number; values: Promise<string[]> }>();

  constructor(private readonly api: Api, private readonly now: () => number = Date.now) {}

  private cached(key: string, load: () => Promise<string[]>): Promise<string[]> {
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < TTL_MS) return hit.values;
    const values = load();
    this.cache.set(key, { at: this.now(), values });
    values.catch(() => this.cache.delete(key));
    return values;
  }

  metricNames(): Promise<string[]> {
    return this.cached("names", () => this.api.labelValues("__name__", undefined));
  }

  labelNames(metric: string | undefined): Promise<string[]> {
    return this.cached("labels\0" + (metric ?? ""), () => this.api.labelNames(metricMatch(metric)));
  }

  labelValues(label: string, metric: string | undefined): Promise<string[]> {
    return this.cached(`values\0${label}\0${metric ?? ""}`, () => this.api.labelValues(label, metricMatch(metric)));
  }

  async suggest(ctx: CompletionContext, limit = 50): Promise<Suggestion[]> {
    switch (ctx.kind) {
      case "none":
        return [];
      case "metric": {
        const names = await this.metricNames().catch(() => [] as string[]);
        const items: Suggestion[] = [
          ...names.map((label) => ({ label, kind: "metric" as const })),
          ...FUNCTIONS.map((label) => ({ label, kind: "function" as const })),
          ...KEYWORDS.map((label) => ({ label, kind: "keyword" as const })),
        ];
        return rankSuggestions(ctx.prefix, items, limit);
      }
      case "operator":
        return rankSuggestions(ctx.prefix, KEYWORDS.filter((k) => k !== "start" && k !== "end").map((label) => ({ label, kind: "keyword" as const })), limit);
      case "labelName": {
        const names = await this.labelNames(ctx.metric).catch(() => [] as string[]);
        return rankSuggestions(ctx.prefix, names.filter((n) => n !== "__name__").map((label) => ({ label, kind: "label" as const })), limit);
      }
      case "labelValue": {
        const values = await this.labelValues(ctx.label, ctx.metric).catch(() => [] as string[]);
        return rankSuggestions(ctx.prefix, values.map((label) => ({ label, kind: "value" as const })), limit);
      }
    }
  }
}

/** `match[]` selecting one metric (its name may need quoting in the UTF-8 syntax). */
export function metricMatch(metric: string | undefined): string | undefined {
  if (metric === undefined || metric === "") return undefined;
  return /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric) ? metric : `{__name__=${JSON.stringify(metric)}}`;
}
