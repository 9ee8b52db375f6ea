export { createServiceApp, listenService, listeningPort, passRawBody, type FlagsPage, type ServiceAppOptions } from "./app.js";
export { pathOf } from "./path.js";
export { PROMETHEUS_ERRORS, describeError, sendError } from "./errors.js";
export type { EndpointKey } from "./auth.js";
