import { BadDataError } from "./errors.js";

/** A tenant: `accountID[:projectID]`, both uint32. A tenant never sees another's data. */
export interface Tenant {
  readonly accountID: number;
  readonly projectID: number;
}

export const DEFAULT_TENANT: Tenant = Object.freeze({ accountID: 0, projectID: 0 });

const MAX_UINT32 = 0xffff_ffff;

function parseUint32(s: string, what: string, input: string): number {
  // Decimal digits only, as VictoriaMetrics' strconv.ParseUint(s, 10, 32): leading zeros are
  // allowed and name the same tenant ("01" is 1); signs, spaces, "%31" and "0x1" are not.
  if (!/^[0-9]+$/.test(s)) {
    const hint = s.includes("%") ? " (percent-encoded tenants are not accepted)" : "";
    throw new BadDataError(
      `invalid tenant ${JSON.stringify(input)}: ${what} must be a decimal uint32, got ${JSON.stringify(s)}${hint}`,
      "STRATA_INVALID_TENANT",
    );
  }
  const digits = s.replace(/^0+(?=.)/, "");
  if (digits.length > 10 || Number(digits) > MAX_UINT32) {
    throw new BadDataError(
      `invalid tenant ${JSON.stringify(input)}: ${what} ${s} exceeds the uint32 maximum ${MAX_UINT32}`,
      "STRATA_INVALID_TENANT",
    );
  }
  return Number(digits);
}

/**
 * Parses `accountID` or `accountID:projectID` (as in `/insert/<tenant>/…`), exactly as it appears
 * in the raw URL path: no percent-decoding, so a tenant has one spelling in insert and select.
 */
export function parseTenant(s: string): Tenant {
  const parts = s.split(":");
  if (parts.length > 2) {
    throw new BadDataError(
      `invalid tenant ${JSON.stringify(s)}: want accountID or accountID:projectID`,
      "STRATA_INVALID_TENANT",
    );
  }
  const accountID = parseUint32(parts[0] ?? "", "accountID", s);
  const projectID = parts.length === 2 ? parseUint32(parts[1] ?? "", "projectID", s) : 0;
  return { accountID, projectID };
}

/**
 * Rejects a request path that a URL parser would rewrite: `.` and `..` segments (also
 * percent-encoded, `%2e%2E`) and backslashes (WHATWG URLs read `\` as `/`). Without this,
 * `/select/2/../1/prometheus/…` would be normalized to tenant 1's path after the router saw it.
 * `rawUrl` is the request target as received (`req.url`), query string included.
 */
export function checkRawPath(rawUrl: string): void {
  const q = rawUrl.search(/[?#]/);
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (path.includes("\\")) throw new BadDataError(`invalid request path ${JSON.stringify(path)}: backslashes are not allowed`);
  for (const seg of path.split("/")) {
    if (/^(?:\.|%2e){1,2}$/i.test(seg)) {
      throw new BadDataError(`invalid request path ${JSON.stringify(path)}: "." and ".." segments are not allowed`);
    }
  }
}

export function formatTenant(t: Tenant): string {
  return t.projectID === 0 ? `${t.accountID}` : `${t.accountID}:${t.projectID}`;
}

export function tenantEquals(a: Tenant, b: Tenant): boolean {
  return a.accountID === b.accountID && a.projectID === b.projectID;
}

/** A stable key usable in Maps. */
export function tenantKey(t: Tenant): string {
  return `${t.accountID}:${t.projectID}`;
}
