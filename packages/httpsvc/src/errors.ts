import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { StrataError, errorMessage, errorTypeOf, httpStatusOf, type ErrorType, type Logger } from "@strata/core";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * How the route's errors are answered: `"prometheus"` gives Prometheus' JSON error shape
     * (`{"status":"error","errorType":…,"error":…}`), anything else plain text (the default).
     */
    errorFormat?: "prometheus" | "text";
  }
}

/** Route options that make a route answer its errors in Prometheus' JSON error shape. */
export const PROMETHEUS_ERRORS = { config: { errorFormat: "prometheus" } } as const;

const typeByStatus: Readonly<Record<number, ErrorType>> = {
  400: "bad_data",
  404: "not_found",
  408: "timeout",
  413: "too_large",
  415: "unsupported_media_type",
  422: "execution",
  429: "too_many_requests",
  499: "canceled",
  503: "unavailable",
};

function isFastifyError(err: unknown): err is FastifyError & { statusCode: number } {
  const e = err as Partial<FastifyError> | null;
  return typeof e === "object" && e !== null && typeof e.code === "string" && e.code.startsWith("FST_") && typeof e.statusCode === "number";
}

/** Status, Prometheus error type and message of anything a handler (or fastify itself) threw. */
export function describeError(err: unknown, req: FastifyRequest, bodyLimitFlag: string): { status: number; type: ErrorType; message: string } {
  if (err instanceof StrataError) return { status: httpStatusOf(err), type: errorTypeOf(err), message: err.message };
  if (isFastifyError(err)) {
    const status = err.statusCode;
    let message = err.message;
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const limit = req.routeOptions.bodyLimit;
      message = `request body exceeds ${bodyLimitFlag === "" ? "the limit of " : `-${bodyLimitFlag}=`}${limit} bytes`;
    }
    return { status, type: typeByStatus[status] ?? (status < 500 ? "bad_data" : "internal"), message };
  }
  return { status: 500, type: "internal", message: errorMessage(err) };
}

/**
 * Answers an error: status from the typed error (fastify's own errors keep theirs), body in the
 * route's errorFormat, `Retry-After: 1` on 429 and 503 (remote write senders back off on it), and
 * `Connection: close` when the body was not read to its end (a half-read request must not stay
 * on a keep-alive socket). 5xx are logged; 4xx are the route's to count and log.
 * `messageOverride` replaces the error's message (e.g. prefixed with the input format).
 */
export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, log: Logger, bodyLimitFlag = "", messageOverride?: string): FastifyReply {
  const d = describeError(err, req, bodyLimitFlag);
  const { status, type } = d;
  const message = messageOverride ?? d.message;
  if (status >= 500) log.error({ url: req.url, status, err: message }, "request failed");
  if (status === 429 || status === 503) void reply.header("retry-after", "1");
  if (!req.raw.complete) {
    void reply.header("connection", "close");
    req.raw.resume();
  }
  void reply.code(status);
  if (req.routeOptions.config.errorFormat === "prometheus") {
    return reply.type("application/json").send(`${JSON.stringify({ status: "error", errorType: type, error: message })}\n`);
  }
  return reply.type("text/plain; charset=utf-8").send(`${message}\n`);
}
