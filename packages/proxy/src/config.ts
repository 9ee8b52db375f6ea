import { createHash } from "node:crypto";
import { RE2JS } from "re2js";
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from "yaml";
import { BadDataError } from "@strata/core";

/**
 * The `-auth.config` file in vmauth's format. Every key is checked: an unknown or unsupported
 * key is an error naming the file, line and key, like vmauth's strict YAML decoding. Secrets in
 * the file are never repeated in an error message.
 */

export type LoadBalancingPolicy = "least_loaded" | "first_available";

/** A `Name: Value` header; an empty value removes the header. */
export interface HeaderSpec {
  readonly name: string;
  readonly value: string;
}

/** A regex anchored at both ends (`^(?:re)$`), in RE2 syntax as in vmauth. */
export interface AnchoredRegex {
  readonly source: string;
  matches(s: string): boolean;
}

export interface QueryArgMatcher {
  readonly name: string;
  readonly value: AnchoredRegex;
}

/** Options a user and each of its url_map entries may set (an entry inherits the user's). */
export interface RouteOptions {
  readonly headers: readonly HeaderSpec[];
  readonly responseHeaders: readonly HeaderSpec[];
  readonly keepOriginalHost: boolean | undefined;
  readonly retryStatusCodes: readonly number[] | undefined;
  readonly loadBalancingPolicy: LoadBalancingPolicy | undefined;
  readonly dropSrcPathPrefixParts: number | undefined;
}

export interface UrlMapEntry extends RouteOptions {
  readonly srcPaths: readonly AnchoredRegex[];
  readonly srcHosts: readonly AnchoredRegex[];
  readonly srcQueryArgs: readonly QueryArgMatcher[];
  readonly srcHeaders: readonly HeaderSpec[];
  readonly urlPrefix: readonly URL[];
  readonly line: number;
}

export interface UserSpec extends RouteOptions {
  /** `name`, else `username`, else a hash of the bearer token (for metrics and logs). */
  readonly name: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly bearerToken: string | undefined;
  readonly urlPrefix: readonly URL[] | undefined;
  readonly urlMap: readonly UrlMapEntry[];
  readonly maxConcurrentRequests: number | undefined;
  readonly line: number;
}

export interface AuthConfig {
  readonly users: readonly UserSpec[];
  readonly unauthorizedUser: UserSpec | undefined;
}

class Ctx {
  constructor(
    readonly file: string,
    private readonly lc: LineCounter,
  ) {}
  line(n: Node | Pair | null | undefined): number {
    const node = n && "range" in n ? n : n && "key" in n ? (n.key as Node | null) : undefined;
    const off = node?.range?.[0];
    return off === undefined ? 0 : this.lc.linePos(off).line;
  }
  fail(n: Node | Pair | null | undefined, msg: string): never {
    throw new BadDataError(`${this.file}:${this.line(n)}: ${msg}`, "STRATA_PARSE_ERROR");
  }
}

const ROUTE_KEYS = ["headers", "response_headers", "keep_original_host", "retry_status_codes", "load_balancing_policy", "drop_src_path_prefix_parts"] as const;
const USER_KEYS = new Set<string>(["name", "username", "password", "bearer_token", "url_prefix", "url_map", "max_concurrent_requests", ...ROUTE_KEYS]);
const URL_MAP_KEYS = new Set<string>(["src_paths", "src_hosts", "src_query_args", "src_headers", "url_prefix", ...ROUTE_KEYS]);
const TOP_KEYS = new Set<string>(["users", "unauthorized_user"]);

function entries(ctx: Ctx, node: Node | null, where: string, allowed: ReadonlySet<string>): Map<string, Pair<Node, Node | null>> {
  if (!isMap(node)) ctx.fail(node, `${where} must be a mapping`);
  const out = new Map<string, Pair<Node, Node | null>>();
  for (const pair of (node as YAMLMap<Node, Node | null>).items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (k === undefined) ctx.fail(pair.key, `${where}: keys must be plain strings`);
    if (!allowed.has(k)) ctx.fail(pair.key, `unknown key ${JSON.stringify(k)} in ${where} (known: ${[...allowed].join(", ")})`);
    out.set(k, pair);
  }
  return out;
}

function str(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string): string | undefined {
  if (p === undefined || p.value === null) return undefined;
  if (!isScalar(p.value) || typeof p.value.value === "object") ctx.fail(p.value, `${what} must be a string`);
  return String(p.value.value);
}

function int(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string, min: number, max: number): number | undefined {
  if (p === undefined || p.value === null) return undefined;
  const v = isScalar(p.value) ? p.value.value : undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) ctx.fail(p.value, `${what} must be an integer from ${min} to ${max}`);
  return v;
}

function bool(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string): boolean | undefined {
  if (p === undefined || p.value === null) return undefined;
  const v = isScalar(p.value) ? p.value.value : undefined;
  if (typeof v !== "boolean") ctx.fail(p.value, `${what} must be true or false`);
  return v;
}

function strList(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string): { value: string; node: Node }[] {
  if (p === undefined || p.value === null) return [];
  if (!isSeq(p.value)) ctx.fail(p.value, `${what} must be a list of strings`);
  return (p.value.items as (Node | null)[]).map((n) => {
    if (!isScalar(n) || typeof n.value === "object") ctx.fail(n ?? p.value, `${what} must be a list of strings`);
    return { value: String(n.value), node: n };
  });
}

export function anchoredRegex(source: string): AnchoredRegex {
  const re = RE2JS.compile(`^(?:${source})$`);
  return { source, matches: (s) => re.matches(s) };
}

function regexList(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string): AnchoredRegex[] {
  return strList(ctx, p, what).map(({ value, node }) => {
    try {
      return anchoredRegex(value);
    } catch (err) {
      return ctx.fail(node, `${what}: cannot compile regex ${JSON.stringify(value)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

function headerList(ctx: Ctx, p: Pair<Node, Node | null> | undefined, what: string): HeaderSpec[] {
  return strList(ctx, p, what).map(({ value, node }) => {
    const i = value.indexOf(":");
    if (i < 0) ctx.fail(node, `${what}: missing ':' between name and value in a header; want "Name: Value"`);
    const name = value.slice(0, i).trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) ctx.fail(node, `${what}: invalid header name ${JSON.stringify(name)}`);
    const v = value.slice(i + 1).trim();
    if (/[\r\n\0]/.test(v)) ctx.fail(node, `${what}: header ${name} has a line break or NUL in its value`);
    return { name, value: v };
  });
}

function urlPrefix(ctx: Ctx, p: Pair<Node, Node | null>, what: string): URL[] {
  const list: { value: string; node: Node }[] = [];
  if (isScalar(p.value) && typeof p.value.value === "string") list.push({ value: p.value.value, node: p.value });
  else if (isSeq(p.value)) list.push(...strList(ctx, p, what));
  else ctx.fail(p.value ?? p, `${what} must be a URL or a list of URLs`);
  if (list.length === 0) ctx.fail(p.value ?? p, `${what} must contain at least one URL`);
  return list.map(({ value, node }) => {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      return ctx.fail(node, `${what}: cannot parse the value as a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") ctx.fail(node, `${what}: unsupported scheme ${JSON.stringify(u.protocol.replace(/:$/, ""))} in ${JSON.stringify(value)}; want http or https`);
    if (u.hostname === "") ctx.fail(node, `${what}: missing host in ${JSON.stringify(value)}`);
    if (u.username !== "" || u.password !== "") ctx.fail(node, `${what}: credentials in the URL are not supported; use headers`);
    return u;
  });
}

function routeOptions(ctx: Ctx, e: Map<string, Pair<Node, Node | null>>, where: string): RouteOptions {
  const lbp = str(ctx, e.get("load_balancing_policy"), `${where}.load_balancing_policy`);
  if (lbp !== undefined && lbp !== "least_loaded" && lbp !== "first_available") {
    ctx.fail(e.get("load_balancing_policy")!.value, `${where}.load_balancing_policy: unexpected ${JSON.stringify(lbp)}; want least_loaded or first_available`);
  }
  const rsc = e.get("retry_status_codes");
  let retryStatusCodes: number[] | undefined;
  if (rsc !== undefined && rsc.value !== null) {
    if (!isSeq(rsc.value)) ctx.fail(rsc.value, `${where}.retry_status_codes must be a list of HTTP status codes`);
    retryStatusCodes = (rsc.value.items as (Node | null)[]).map((n) => {
      const v = isScalar(n) ? n.value : undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 100 || v > 599) ctx.fail(n ?? rsc.value, `${where}.retry_status_codes: want HTTP status codes (100-599)`);
      return v;
    });
  }
  return {
    headers: headerList(ctx, e.get("headers"), `${where}.headers`),
    responseHeaders: headerList(ctx, e.get("response_headers"), `${where}.response_headers`),
    keepOriginalHost: bool(ctx, e.get("keep_original_host"), `${where}.keep_original_host`),
    retryStatusCodes,
    loadBalancingPolicy: lbp as LoadBalancingPolicy | undefined,
    dropSrcPathPrefixParts: int(ctx, e.get("drop_src_path_prefix_parts"), `${where}.drop_src_path_prefix_parts`, 0, 1000),
  };
}

function urlMapEntry(ctx: Ctx, node: Node | null, where: string): UrlMapEntry {
  const e = entries(ctx, node, where, URL_MAP_KEYS);
  const srcQueryArgs = strList(ctx, e.get("src_query_args"), `${where}.src_query_args`).map(({ value, node: n }) => {
    const i = value.indexOf("=");
    if (i <= 0) ctx.fail(n, `${where}.src_query_args: want name=value or name=~regex, got ${JSON.stringify(value)}`);
    const v = value.slice(i + 1);
    const source = v.startsWith("~") ? v.slice(1) : v.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
    try {
      return { name: value.slice(0, i), value: anchoredRegex(source) };
    } catch (err) {
      return ctx.fail(n, `${where}.src_query_args: cannot compile regex ${JSON.stringify(source)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  const entry: UrlMapEntry = {
    ...routeOptions(ctx, e, where),
    srcPaths: regexList(ctx, e.get("src_paths"), `${where}.src_paths`),
    srcHosts: regexList(ctx, e.get("src_hosts"), `${where}.src_hosts`),
    srcQueryArgs,
    srcHeaders: headerList(ctx, e.get("src_headers"), `${where}.src_headers`),
    urlPrefix: e.has("url_prefix") ? urlPrefix(ctx, e.get("url_prefix")!, `${where}.url_prefix`) : ctx.fail(node, `${where}: missing url_prefix`),
    line: ctx.line(node),
  };
  if (entry.srcPaths.length + entry.srcHosts.length + entry.srcQueryArgs.length + entry.srcHeaders.length === 0) {
    ctx.fail(node, `${where}: set at least one of src_paths, src_hosts, src_query_args, src_headers`);
  }
  return entry;
}

function user(ctx: Ctx, node: Node | null, where: string, unauthorized: boolean): UserSpec {
  const e = entries(ctx, node, where, USER_KEYS);
  const name = str(ctx, e.get("name"), `${where}.name`);
  const username = str(ctx, e.get("username"), `${where}.username`);
  const password = str(ctx, e.get("password"), `${where}.password`);
  const bearerToken = str(ctx, e.get("bearer_token"), `${where}.bearer_token`);
  if (unauthorized) {
    for (const k of ["name", "username", "password", "bearer_token"]) {
      if (e.has(k)) ctx.fail(e.get(k)!, `${where}: ${k} cannot be set for unauthorized_user`);
    }
  } else {
    if (username === undefined && bearerToken === undefined) ctx.fail(node, `${where}: set username or bearer_token`);
    if (username !== undefined && bearerToken !== undefined) ctx.fail(node, `${where}: username and bearer_token cannot both be set`);
    if (bearerToken !== undefined && password !== undefined) ctx.fail(e.get("password")!, `${where}: password cannot be set with bearer_token`);
    if (username === "") ctx.fail(e.get("username")!, `${where}: username is empty`);
    if (bearerToken === "") ctx.fail(e.get("bearer_token")!, `${where}: bearer_token is empty`);
  }
  const urlMapPair = e.get("url_map");
  let urlMap: UrlMapEntry[] = [];
  if (urlMapPair !== undefined && urlMapPair.value !== null) {
    if (!isSeq(urlMapPair.value)) ctx.fail(urlMapPair.value, `${where}.url_map must be a list`);
    urlMap = (urlMapPair.value.items as (Node | null)[]).map((n, i) => urlMapEntry(ctx, n, `${where}.url_map[${i}]`));
  }
  const up = e.get("url_prefix");
  const prefix = up !== undefined && up.value !== null ? urlPrefix(ctx, up, `${where}.url_prefix`) : undefined;
  if (prefix === undefined && urlMap.length === 0) ctx.fail(node, `${where}: missing url_prefix or url_map`);
  // vmauth names a token-only user by a hash of its token; `name` is the readable alternative.
  const display = name ?? username ?? (bearerToken !== undefined ? `bearer_token:hash:${createHash("sha256").update(bearerToken).digest("hex").slice(0, 16).toUpperCase()}` : "");
  return {
    ...routeOptions(ctx, e, where),
    name: display,
    username,
    password,
    bearerToken,
    urlPrefix: prefix,
    urlMap,
    maxConcurrentRequests: int(ctx, e.get("max_concurrent_requests"), `${where}.max_concurrent_requests`, 1, 1_000_000),
    line: ctx.line(node),
  };
}

/**
 * Replaces `%{NAME}` with the environment variable NAME, as vmauth does, so that passwords and
 * tokens can come from the environment instead of the file. An unset variable is an error
 * naming it and its line; a value with a line break is refused (it would shift every line).
 */
export function expandEnv(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return text.replace(/%\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string, offset: number) => {
    const line = text.slice(0, offset).split("\n").length;
    const v = env[name];
    if (v === undefined) throw new BadDataError(`${file}:${line}: environment variable ${name} (in %{${name}}) is not set`, "STRATA_PARSE_ERROR");
    if (/[\r\n]/.test(v)) throw new BadDataError(`${file}:${line}: environment variable ${name} holds a line break`, "STRATA_PARSE_ERROR");
    return v;
  });
}

/** Parses the text of an auth config (after `%{ENV}` expansion); `file` names it in errors. */
export function parseAuthConfig(text: string, file = "auth config", env: Readonly<Record<string, string | undefined>> = process.env): AuthConfig {
  const lc = new LineCounter();
  const doc = parseDocument(expandEnv(text, file, env), { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line;
    throw new BadDataError(`${file}:${line}: ${e.message.split("\n")[0]}`, "STRATA_PARSE_ERROR");
  }
  const ctx: Ctx = new Ctx(file, lc);
  const top = entries(ctx, doc.contents as Node | null, "the config", TOP_KEYS);
  const usersPair = top.get("users");
  const users: UserSpec[] = [];
  if (usersPair !== undefined && usersPair.value !== null) {
    if (!isSeq(usersPair.value)) ctx.fail(usersPair.value, "users must be a list");
    (usersPair.value.items as (Node | null)[]).forEach((n, i) => users.push(user(ctx, n, `users[${i}]`, false)));
  }
  const uu = top.get("unauthorized_user");
  const unauthorizedUser = uu !== undefined && uu.value !== null ? user(ctx, uu.value, "unauthorized_user", true) : undefined;
  if (users.length === 0 && unauthorizedUser === undefined) ctx.fail(doc.contents as Node | null, "set users or unauthorized_user: a config that lets nobody through is a mistake");
  const seenNames = new Map<string, number>();
  for (const u of users) {
    const prev = seenNames.get(u.name);
    if (prev !== undefined) throw new BadDataError(`${file}:${u.line}: user name ${JSON.stringify(u.name)} repeats the user at line ${prev}`, "STRATA_PARSE_ERROR");
    seenNames.set(u.name, u.line);
  }
  return { users, unauthorizedUser };
}
