import type { FastifyReply } from "fastify";
import { UnavailableError } from "@strata/core";
import { success, writeJson } from "./respond.js";

/**
 * /select/<tenant>/prometheus/api/v1/{rules,alerts}: forwarded to the alert service given by
 * -vmalert.proxyURL (as vmselect does), so Grafana's Prometheus data source lists rules and
 * alerts. Without the flag the answers are empty lists, as before.
 */

export type RulesApiPath = "api/v1/rules" | "api/v1/alerts";

const EMPTY: Readonly<Record<RulesApiPath, string>> = { "api/v1/rules": '{"groups":[]}', "api/v1/alerts": '{"alerts":[]}' };

export function vmalertProxy(proxyURL: string | undefined, timeoutMs: number) {
  const base = proxyURL?.replace(/\/$/, "");
  return async (res: FastifyReply, path: RulesApiPath, search: string, signal: AbortSignal): Promise<void> => {
    if (base === undefined || base === "") {
      success(res, EMPTY[path]);
      return;
    }
    let r: Response;
    try {
      r = await fetch(`${base}/${path}${search}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    } catch (err) {
      throw new UnavailableError(`cannot reach the alert service at -vmalert.proxyURL=${base}: ${err instanceof Error ? err.message : String(err)}`);
    }
    writeJson(res, r.status, await r.text());
  };
}
