import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Completer } from "./completer";
import { applySuggestion, classify, completionContext, rankSuggestions, tokenize, type CompletionContext, type Suggestion } from "./promql";

export interface QueryEditorProps {
  readonly index: number;
  readonly value: string;
  readonly onChange: (v: string) => void;
  readonly onRun: () => void;
  readonly onRemove?: (() => void) | undefined;
  readonly completer: Completer;
  /** Offset of a parse error reported by the server, for the marker. */
  readonly errorOffset?: number | undefined;
  readonly history: readonly string[];
  readonly debounceMs?: number;
}

/** Highlighted PromQL as spans; the char at `errorOffset` gets the error marker. */
export function Highlighted({ src, errorOffset }: { src: string; errorOffset?: number | undefined }) {
  const tokens = tokenize(src);
  const cls = classify(tokens);
  const out = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (!t) continue;
    const c = cls[k] ?? "plain";
    if (errorOffset !== undefined && errorOffset >= t.start && errorOffset < t.end) {
      const a = errorOffset - t.start;
      out.push(<span key={k + "a"} class={`tok-${c}`}>{t.text.slice(0, a)}</span>);
      out.push(<span key={k + "e"} class={`tok-${c} err-pos`}>{t.text.slice(a, a + 1)}</span>);
      out.push(<span key={k + "b"} class={`tok-${c}`}>{t.text.slice(a + 1)}</span>);
    } else {
      out.push(<span key={k} class={`tok-${c}`}>{t.text}</span>);
    }
  }
  if (errorOffset !== undefined && errorOffset >= src.length) out.push(<span key="eof" class="err-pos"> </span>);
  // A trailing newline needs a character after it to take up a line in the <pre>.
  out.push(<span key="nl">{"\n"}</span>);
  return <>{out}</>;
}

/** Whether two contexts ask for the same candidates (they may differ in prefix and position). */
function sameQuestion(a: CompletionContext, b: CompletionContext): boolean {
  const key = (c: CompletionContext): string => JSON.stringify({ ...c, prefix: "", from: 0, to: 0 });
  return a.kind === b.kind && key(a) === key(b);
}

export function QueryEditor(p: QueryEditorProps) {
  const ta = useRef<HTMLTextAreaElement>(null);
  const pre = useRef<HTMLPreElement>(null);
  const [items, setItems] = useState<Suggestion[]>([]);
  // -1: the user has not moved into the list, so Enter runs the query instead of accepting.
  const [active, setActive] = useState(-1);
  const [ctx, setCtx] = useState<CompletionContext>({ kind: "none" });
  const [showHistory, setShowHistory] = useState(false);
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const debounceMs = p.debounceMs ?? 150;

  useEffect(() => () => clearTimeout(timer.current), []);

  const refresh = (text: string, pos: number): void => {
    const c = completionContext(text, pos);
    const my = ++seq.current;
    clearTimeout(timer.current);
    if (c.kind === "none") {
      setItems([]);
      setCtx(c);
      return;
    }
    // Until the fresh list arrives, the shown one is narrowed to the new prefix (or hidden when it
    // answered another question), so that arrows and Enter never act on a list for older text.
    setItems((cur) => (sameQuestion(ctx, c) ? rankSuggestions(c.prefix, cur) : []));
    setCtx(c);
    setActive(-1);
    timer.current = setTimeout(() => {
      void p.completer.suggest(c).then((list) => {
        if (my !== seq.current) return; // a newer keystroke won
        setCtx(c);
        setItems(list);
        setActive(-1);
      });
    }, debounceMs);
  };

  const accept = (s: Suggestion): void => {
    const el = ta.current;
    const edit = applySuggestion(el ? el.value : p.value, ctx, s);
    setItems([]);
    seq.current++;
    // Write the text and the cursor into the textarea synchronously: deferring the cursor to
    // a later frame lets keystrokes typed in between land before it and then be moved behind.
    // The re-render that follows sees the same value and leaves the selection alone.
    if (el) {
      el.value = edit.text;
      el.setSelectionRange(edit.cursor, edit.cursor);
      el.focus();
    }
    p.onChange(edit.text);
    refresh(edit.text, edit.cursor);
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    const open = items.length > 0;
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      setActive((a) => (a < 0 ? (e.key === "ArrowDown" ? 0 : items.length - 1) : (a + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length));
      return;
    }
    if (open && (e.key === "Tab" || (e.key === "Enter" && active >= 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey))) {
      e.preventDefault();
      const s = items[Math.max(0, active)];
      if (s) accept(s);
      return;
    }
    if (open && e.key === "Escape") {
      e.preventDefault();
      setItems([]);
      seq.current++;
      return;
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey || !e.shiftKey)) {
      e.preventDefault();
      setItems([]);
      seq.current++;
      p.onRun();
      return;
    }
    if (e.key === " " && e.ctrlKey) {
      e.preventDefault();
      const el = e.currentTarget as HTMLTextAreaElement;
      refresh(el.value, el.selectionStart);
    }
  };

  const rows = useMemo(() => Math.min(12, p.value.split("\n").length), [p.value]);

  return (
    <div class="editor-row">
      <span class="editor-index" title={`query ${p.index + 1}`}>{p.index + 1}</span>
      <div class="editor">
        <pre class="editor-highlight" ref={pre} aria-hidden="true">
          <Highlighted src={p.value} errorOffset={p.errorOffset} />
        </pre>
        <textarea
          ref={ta}
          class="editor-input"
          data-testid={`query-${p.index}`}
          rows={rows}
          spellcheck={false}
          autocomplete="off"
          placeholder="Enter a PromQL query, e.g. rate(http_requests_total[5m]) — Ctrl+Enter runs, Ctrl+Space completes"
          value={p.value}
          onInput={(e) => {
            const el = e.currentTarget;
            p.onChange(el.value);
            refresh(el.value, el.selectionStart);
          }}
          onKeyDown={onKeyDown}
          onScroll={(e) => { if (pre.current) pre.current.scrollTop = e.currentTarget.scrollTop; }}
          onBlur={() => setTimeout(() => setItems([]), 150)}
        />
        {items.length > 0 && (
          <ul class="suggestions" role="listbox" data-testid="suggestions">
            {items.map((s, i) => (
              <li
                key={s.kind + s.label}
                role="option"
                aria-selected={i === active}
                class={i === active ? "active" : ""}
                onMouseDown={(e) => { e.preventDefault(); accept(s); }}
              >
                <span class={`sugg-kind sugg-${s.kind}`}>{s.kind[0]}</span>
                {s.label}
              </li>
            ))}
          </ul>
        )}
        {showHistory && (
          <ul class="suggestions history" data-testid="history">
            {p.history.length === 0 && <li class="muted">no queries run yet</li>}
            {p.history.map((h) => (
              <li key={h} onMouseDown={(e) => { e.preventDefault(); p.onChange(h); setShowHistory(false); }}>{h}</li>
            ))}
          </ul>
        )}
      </div>
      <button type="button" class="icon" title="Query history" onClick={() => setShowHistory((v) => !v)} onBlur={() => setTimeout(() => setShowHistory(false), 150)}>⟲</button>
      {p.onRemove && <button type="button" class="icon" title="Remove this query" onClick={p.onRemove}>✕</button>}
    </div>
  );
}
