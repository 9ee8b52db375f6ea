export * from "./config.js";
export * from "./path.js";
export * from "./balancer.js";
export * from "./limiter.js";
export * from "./users.js";
export * from "./forward.js";
export * from "./proxy.js";
