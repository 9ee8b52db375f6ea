export * from "./errors.js";
export * from "./tenant.js";
export * from "./labels.js";
export * from "./matchers.js";
export * from "./rows.js";
