import { BadDataError } from "./errors.js";

/** A tenant: `accountID[:projectID]`, both uint32. A tenant never sees another's data. */
export interface Tenant {
  readonly accountID: number;
  readonly projectID: number;
}

export const DEFAULT_TENANT: Tenant = Object.freeze({ accountID: 0, projectID: 0 });

const MAX_UINT32 = 0xffff_ffff;

function parseUint32(s: string, what: string, input: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) {
    throw new BadDataError(
      `invalid tenant ${JSON.stringify(input)}: ${what} must be a decimal uint32, got ${JSON.stringify(s)}`,
      "STRATA_INVALID_TENANT",
    );
  }
  const n = Number(s);
  if (n > MAX_UINT32) {
    throw new BadDataError(
      `invalid tenant ${JSON.stringify(input)}: ${what} ${s} exceeds the uint32 maximum ${MAX_UINT32}`,
      "STRATA_INVALID_TENANT",
    );
  }
  return n;
}

/** Parses `accountID` or `accountID:projectID` (as in `/insert/<tenant>/…`). */
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
