/**
 * The closed set of errors Strata raises. Every error has a stable `code` (machine readable,
 * never changes meaning) and a `type` from the Prometheus HTTP API error types. HTTP status is
 * derived from the type only at the edge (see `httpStatusOf`), never stored in the error.
 */

export type ErrorType =
  | "bad_data"
  | "execution"
  | "timeout"
  | "canceled"
  | "unavailable"
  | "too_many_requests"
  | "too_large"
  | "unsupported_media_type"
  | "not_found"
  | "internal";

/** Stable codes. Add new ones at the end; never reuse or rename one. */
export type ErrorCode =
  | "STRATA_BAD_REQUEST"
  | "STRATA_INVALID_TENANT"
  | "STRATA_INVALID_LABEL_NAME"
  | "STRATA_INVALID_LABEL_VALUE"
  | "STRATA_INVALID_METRIC_NAME"
  | "STRATA_DUPLICATE_LABEL"
  | "STRATA_TOO_MANY_LABELS"
  | "STRATA_LABEL_TOO_LONG"
  | "STRATA_INVALID_DURATION"
  | "STRATA_INVALID_TIMESTAMP"
  | "STRATA_INVALID_FLAG"
  | "STRATA_UNKNOWN_FLAG"
  | "STRATA_PARSE_ERROR"
  | "STRATA_CORRUPT_DATA"
  | "STRATA_QUERY_EXECUTION"
  | "STRATA_LIMIT_EXCEEDED"
  | "STRATA_TIMEOUT"
  | "STRATA_CANCELED"
  | "STRATA_UNAVAILABLE"
  | "STRATA_TOO_MANY_REQUESTS"
  | "STRATA_BODY_TOO_LARGE"
  | "STRATA_UNSUPPORTED_MEDIA_TYPE"
  | "STRATA_NOT_FOUND"
  | "STRATA_INTERNAL"
  | "STRATA_CLOSED"
  | "STRATA_READ_ONLY"
  | "STRATA_DISK_FULL";

export abstract class StrataError extends Error {
  abstract readonly type: ErrorType;
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** Input that can never succeed as sent: a parse error, an invalid name, a bad parameter. */
export class BadDataError extends StrataError {
  readonly type = "bad_data" as const;
  constructor(message: string, code: ErrorCode = "STRATA_BAD_REQUEST", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A query (or operation) that was well formed but failed while running, e.g. a limit. */
export class ExecutionError extends StrataError {
  readonly type = "execution" as const;
  constructor(message: string, code: ErrorCode = "STRATA_QUERY_EXECUTION", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class TimeoutError extends StrataError {
  readonly type = "timeout" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_TIMEOUT", message, options);
  }
}

export class CanceledError extends StrataError {
  readonly type = "canceled" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_CANCELED", message, options);
  }
}

/** A dependency (storage node, disk) cannot serve now; a retry may succeed. */
export class UnavailableError extends StrataError {
  readonly type = "unavailable" as const;
  constructor(message: string, code: ErrorCode = "STRATA_UNAVAILABLE", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class TooManyRequestsError extends StrataError {
  readonly type = "too_many_requests" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_TOO_MANY_REQUESTS", message, options);
  }
}

export class PayloadTooLargeError extends StrataError {
  readonly type = "too_large" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_BODY_TOO_LARGE", message, options);
  }
}

export class UnsupportedMediaTypeError extends StrataError {
  readonly type = "unsupported_media_type" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_UNSUPPORTED_MEDIA_TYPE", message, options);
  }
}

export class NotFoundError extends StrataError {
  readonly type = "not_found" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super("STRATA_NOT_FOUND", message, options);
  }
}

/** A bug or a broken invariant (including corrupt files). Never the client's fault. */
export class InternalError extends StrataError {
  readonly type = "internal" as const;
  constructor(message: string, code: ErrorCode = "STRATA_INTERNAL", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const statusByType: Record<ErrorType, number> = {
  bad_data: 400,
  execution: 422,
  timeout: 503,
  canceled: 499,
  unavailable: 503,
  too_many_requests: 429,
  too_large: 413,
  unsupported_media_type: 415,
  not_found: 404,
  internal: 500,
};

/** HTTP status for an error; anything that is not a StrataError is an internal error (500). */
export function httpStatusOf(err: unknown): number {
  return err instanceof StrataError ? statusByType[err.type] : 500;
}

/** The Prometheus API `errorType` for an error. */
export function errorTypeOf(err: unknown): ErrorType {
  return err instanceof StrataError ? err.type : "internal";
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function assertNever(x: never, what = "value"): never {
  throw new InternalError(`unexpected ${what}: ${JSON.stringify(x)}`);
}
