import { describe, expect, it } from "vitest";
import { Limiter } from "@strata/proxy";

describe("concurrency limiter", () => {
  it("hands a released slot to the oldest waiter, refuses at once with no wait, and drops a waiter whose client left", async () => {
    const l = new Limiter(1);
    expect(await l.acquire(0)).toBe(true);
    expect(await l.acquire(0)).toBe(false);
    const gone = new AbortController();
    const left = l.acquire(60_000, gone.signal);
    const waiting = l.acquire(60_000);
    gone.abort();
    expect(await left).toBe(false);
    l.release();
    expect(await waiting).toBe(true);
    expect(l.current).toBe(1);
    l.release();
    expect(l.current).toBe(0);
  });
});
