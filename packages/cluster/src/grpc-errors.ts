import { BadDataError, errorMessage, ExecutionError, StrataError, type ErrorCode, type ErrorType } from "@strata/core";
import { grpc } from "@strata/protocol";

/**
 * One table for both directions of the storage RPC error mapping: the storage node turns a Strata
 * error into a grpc status (its details keep the stable code: `CODE: message`), and the clients in
 * insert and select turn a status back. The first row whose code and type (where given) match the
 * error gives its status; the rows with `toError` are the request's fault, raised as is by the client (never rerouted or made
 * partial); every other status means the node could not serve the call.
 */
interface Row {
  readonly status: grpc.status;
  readonly code?: ErrorCode;
  readonly type?: ErrorType;
  readonly toError?: (details: string) => StrataError;
}

const ROWS: readonly Row[] = [
  { status: grpc.status.INVALID_ARGUMENT, type: "bad_data", toError: (d) => new BadDataError(d) },
  { status: grpc.status.RESOURCE_EXHAUSTED, type: "execution", code: "STRATA_LIMIT_EXCEEDED", toError: (d) => new ExecutionError(d, "STRATA_LIMIT_EXCEEDED") },
  { status: grpc.status.FAILED_PRECONDITION, type: "execution" },
  { status: grpc.status.DEADLINE_EXCEEDED, type: "timeout" },
  { status: grpc.status.CANCELLED, type: "canceled" },
  { status: grpc.status.UNAVAILABLE, code: "STRATA_CLOSED" },
  { status: grpc.status.UNAVAILABLE, type: "unavailable" },
];

const BY_STATUS = new Map<grpc.status, (details: string) => StrataError>();
for (const r of ROWS) if (r.toError && !BY_STATUS.has(r.status)) BY_STATUS.set(r.status, r.toError);

/** The grpc status of an error (INTERNAL for anything the table does not name); details keep the stable code. */
export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  if (!(err instanceof StrataError)) return { code: grpc.status.INTERNAL, details: errorMessage(err) };
  const row = ROWS.find((r) => (r.code === undefined || r.code === err.code) && (r.type === undefined || r.type === err.type));
  return { code: row?.status ?? grpc.status.INTERNAL, details: `${err.code}: ${err.message}` };
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err;
}

/** The error a client raises as is for a status that is the request's fault; undefined when the node failed. */
export function fromGrpcError(err: unknown): StrataError | undefined {
  if (!isServiceError(err)) return undefined;
  return BY_STATUS.get(err.code)?.(err.details);
}
