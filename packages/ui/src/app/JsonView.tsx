import { useState } from "preact/hooks";

export interface JsonAnswer {
  readonly query: string;
  readonly url: string;
  readonly text: string;
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Insecure origins (plain http on a LAN address) have no clipboard API.
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

export function JsonView({ answers }: { answers: readonly JsonAnswer[] }) {
  const [copied, setCopied] = useState(-1);
  if (answers.length === 0) return <div class="muted empty">Run a query to see the raw API answer.</div>;
  return (
    <div class="json-view">
      {answers.map((a, i) => (
        <section key={i} class="json-answer">
          <div class="json-head">
            <span class="q-badge">{i + 1}</span>
            <code class="mono url" title={a.url}>{a.url}</code>
            <button type="button" data-testid={`copy-${i}`} onClick={() => void copy(a.text).then((ok) => setCopied(ok ? i : -1))}>
              {copied === i ? "Copied" : "Copy"}
            </button>
          </div>
          <pre class="json" data-testid="json">{pretty(a.text)}</pre>
        </section>
      ))}
    </div>
  );
}
