import { defineFlags, flag, flagsPageFlags } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";

/** strata-auth's flags: vmauth's names and defaults, plus the listener security flags. */
export const authFlags = defineFlags({
  "auth.config": flag.string("", "Path to the auth config in vmauth's format (users, url_prefix, url_map, unauthorized_user); required. Re-read on SIGHUP and on /-/reload; a bad file keeps the previous config."),
  httpListenAddr: flag.string(":8427", "TCP address for proxied requests and for /metrics, /health, /-/ready, /-/reload."),
  loadBalancingPolicy: flag.string("least_loaded", "Default policy among the backends of a url_prefix list: least_loaded or first_available (load_balancing_policy in the config overrides it)."),
  failTimeout: flag.duration("3s", "How long a backend that failed is skipped by load balancing."),
  retryStatusCodes: flag.stringList([], "Default HTTP status codes from a backend on which the request is sent to the next backend (retry_status_codes overrides it), e.g. 502,503."),
  maxConcurrentRequests: flag.int(1000, "Requests proxied at once over all users; others wait up to -maxQueueDuration, then get 429."),
  maxConcurrentPerUserRequests: flag.int(300, "Requests proxied at once per user unless its max_concurrent_requests says otherwise; others wait up to -maxQueueDuration, then get 429."),
  maxQueueDuration: flag.duration("10s", "How long a request waits for a free slot under -maxConcurrentRequests or a user's limit before 429."),
  maxRequestBodySizeToRetry: flag.bytes(16 * 1024, "Request bodies up to this size are kept so the request can go to another backend when one fails; bigger bodies are streamed and retried only if the backend refused the connection."),
  responseTimeout: flag.duration("5m", "How long a backend may take to start answering."),
  maxIdleConnsPerBackend: flag.int(100, "Idle keep-alive connections kept per backend."),
  removeXFFHTTPHeaderValue: flag.bool(false, "Drop the client's X-Forwarded-For value before adding the client address (recommended when auth faces the internet)."),
  reloadAuthKey: flag.string("", "Key that /-/reload wants as the authKey query arg; overrides -httpAuth.* there; file:///path reads it from a file. Never logged."),
  dryRun: flag.bool(false, "Only check -auth.config and exit: 0 when it loads, 1 with the error otherwise."),
  loggerLevel: flag.string("INFO", "Minimum log level: DEBUG, INFO, WARN, ERROR."),
  ...flagsPageFlags,
  ...httpSecurityFlags,
});
