import { ApiError, parseErrorPosition } from "./api";

export function ErrorBox({ error }: { error: unknown }) {
  if (!(error instanceof ApiError)) {
    return <div class="error" role="alert" data-testid="error">{error instanceof Error ? error.message : String(error)}</div>;
  }
  const pos = error.query ? parseErrorPosition(error.message, error.query) : undefined;
  return (
    <div class="error" role="alert" data-testid="error">
      <div class="error-head">
        <b>{error.errorType}</b>
        {error.status > 0 && <span class="muted"> · HTTP {error.status}</span>}
        {pos && <span class="muted"> · line {pos.line}, column {pos.col}</span>}
      </div>
      <div class="error-msg">{error.message}</div>
      {error.query && (
        <pre class="error-query mono">
          {error.query}
          {pos && !error.query.includes("\n") && "\n" + " ".repeat(pos.offset) + "^"}
        </pre>
      )}
    </div>
  );
}
