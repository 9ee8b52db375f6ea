export * from "./secret.js";
export * from "./compare.js";
export * from "./authorization.js";
export * from "./ratelimited-log.js";
export * from "./failures.js";
export * from "./guard.js";
export * from "./tls.js";
export * from "./flags.js";
