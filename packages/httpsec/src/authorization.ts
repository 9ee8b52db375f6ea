/** The credentials of an `Authorization` header, as far as Strata's services understand them. */
export type Credentials =
  | { readonly kind: "none" }
  | { readonly kind: "basic"; readonly username: string; readonly password: string }
  | { readonly kind: "bearer"; readonly token: string }
  | { readonly kind: "malformed"; readonly why: string };

const NONE: Credentials = { kind: "none" };

/**
 * Parses an `Authorization` header. `Token x` (InfluxDB clients) counts as `Bearer x`, as in
 * vmauth. Basic credentials must be valid base64 of `user:password`.
 */
export function parseAuthorization(header: string | readonly string[] | undefined): Credentials {
  if (header === undefined) return NONE;
  if (typeof header !== "string") return { kind: "malformed", why: "more than one Authorization header" };
  const h = header.trim();
  if (h === "") return NONE;
  const sp = h.indexOf(" ");
  const scheme = (sp < 0 ? h : h.slice(0, sp)).toLowerCase();
  const rest = sp < 0 ? "" : h.slice(sp + 1).trim();
  if (scheme === "basic") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(rest) || rest.length % 4 === 1) return { kind: "malformed", why: "Basic credentials are not base64" };
    const decoded = Buffer.from(rest, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return { kind: "malformed", why: "Basic credentials lack the ':' between user and password" };
    return { kind: "basic", username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (scheme === "bearer" || scheme === "token") {
    if (rest === "") return { kind: "malformed", why: "empty bearer token" };
    return { kind: "bearer", token: rest };
  }
  return { kind: "malformed", why: `unsupported authorization scheme ${JSON.stringify(scheme.slice(0, 20))}` };
}

/** The `WWW-Authenticate` value of every 401 Strata answers. */
export const WWW_AUTHENTICATE = 'Basic realm="Restricted"';
