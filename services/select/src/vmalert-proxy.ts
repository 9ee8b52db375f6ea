import type { FastifyReply } from "fastify";
import { BadDataError, UnavailableError } from "@strata/core";
import { success, writeJson } from "./respond.js";

/**
 * /select/<tenant>/prometheus/api/v1/{rules,alerts}: forwarded to the alert service given by
 * -vmalert.proxyURL (as vmselect does), so Grafana's Prometheus data source lists rules and
 * alerts. Without the flag the answers are empty lists, as before.
 *
 * Credentials: `-vmalert.proxyURL=https://user:pass@alert:8880` sends them as basic auth (for an
 * alert service behind -httpAuth.*); without userinfo the client's own Authorization header goes
 * along, as vmselect's reverse proxy passes it. An https:// alert service is verified against the
 * system CAs plus NODE_EXTRA_CA_CERTS (vmselect has no CA flag for it either).
 */

export type RulesApiPath = "api/v1/rules" | "api/v1/alerts";

const EMPTY: Readonly<Record<RulesApiPath, string>> = { "api/v1/rules": '{"groups":[]}', "api/v1/alerts": '{"alerts":[]}' };

interface ProxyTarget {
  /** The URL without userinfo and trailing slash: what requests go to and errors show. */
  readonly base: string;
  readonly authorization: string | undefined;
}

function proxyTarget(proxyURL: string): ProxyTarget {
  let u: URL;
  try {
    u = new URL(proxyURL);
  } catch {
    throw new BadDataError("-vmalert.proxyURL: not a URL (want e.g. http://alert:8880)", "STRATA_INVALID_FLAG");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new BadDataError(`-vmalert.proxyURL: scheme ${u.protocol} is not http: or https:`, "STRATA_INVALID_FLAG");
  const authorization =
    u.username !== "" || u.password !== "" ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}` : undefined;
  u.username = "";
  u.password = "";
  return { base: u.href.replace(/\/$/, ""), authorization };
}

export function vmalertProxy(proxyURL: string | undefined, timeoutMs: number) {
  const target = proxyURL === undefined || proxyURL === "" ? undefined : proxyTarget(proxyURL);
  return async (res: FastifyReply, path: RulesApiPath, search: string, signal: AbortSignal, clientAuthorization: string | undefined): Promise<void> => {
    if (target === undefined) {
      success(res, EMPTY[path]);
      return;
    }
    const authorization = target.authorization ?? clientAuthorization;
    let r: Response;
    try {
      r = await fetch(`${target.base}/${path}${search}`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        ...(authorization !== undefined ? { headers: { authorization } } : {}),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
      throw new UnavailableError(`cannot reach the alert service at -vmalert.proxyURL=${target.base}: ${err instanceof Error ? err.message : String(err)}${cause}`);
    }
    writeJson(res, r.status, await r.text());
  };
}
