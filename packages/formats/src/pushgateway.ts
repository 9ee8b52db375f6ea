import { BadDataError } from "@strata/core";
import type { Label } from "@strata/core";

/**
 * Labels from a Pushgateway-style path suffix, `/metrics/job/<job>{/<label>/<value>}`, as
 * accepted after `/api/v1/import/prometheus` (VictoriaMetrics). A label name ending in
 * `@base64` has a base64url value (Pushgateway's encoding for values with `/`); `job` is
 * required. Returns the labels to add as extra labels. Throws BadDataError naming the part.
 */
export function parsePushgatewayPath(path: string): Label[] {
  let p = path.startsWith("/") ? path.slice(1) : path;
  if (p.endsWith("/")) p = p.slice(0, -1);
  const parts = p.split("/");
  if (parts[0] !== "metrics" || parts.length < 3) {
    throw new BadDataError(`pushgateway path ${JSON.stringify(path)}: want /metrics/job/<job>{/<label>/<value>}`);
  }
  const out: Label[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    let name = decodeURIComponentSafe(parts[i]!, path);
    const raw = parts[i + 1];
    if (raw === undefined) throw new BadDataError(`pushgateway path ${JSON.stringify(path)}: label ${JSON.stringify(name)} has no value`);
    let value = decodeURIComponentSafe(raw, path);
    if (name.endsWith("@base64")) {
      name = name.slice(0, -"@base64".length);
      value = value === "=" ? "" : Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8");
    }
    if (name === "") throw new BadDataError(`pushgateway path ${JSON.stringify(path)}: empty label name`);
    out.push({ name, value });
  }
  if (out[0]!.name !== "job" || out[0]!.value === "") {
    throw new BadDataError(`pushgateway path ${JSON.stringify(path)}: must start with /metrics/job/<job>`);
  }
  return out;
}

function decodeURIComponentSafe(s: string, path: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BadDataError(`pushgateway path ${JSON.stringify(path)}: bad percent-encoding in ${JSON.stringify(s)}`);
  }
}
