import { describe, expect, it } from "vitest";
import { BackendSet } from "@strata/proxy";

const urls = (n: number): URL[] => Array.from({ length: n }, (_, i) => new URL(`http://b${i}:80`));

describe("load balancing", () => {
  it("least_loaded rotates over idle backends and prefers the least busy", () => {
    const s = new BackendSet(urls(3), "least_loaded", 3000);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const b = s.pick()!;
      seen.push(b.url.hostname);
      s.release(b);
    }
    expect(new Set(seen)).toEqual(new Set(["b0", "b1", "b2"]));
    const busy = [s.pick()!, s.pick()!];
    const third = s.pick()!;
    expect(busy.map((b) => b.url.hostname)).not.toContain(third.url.hostname);
  });

  it("first_available sticks to the first healthy backend", () => {
    let now = 1000;
    const s = new BackendSet(urls(3), "first_available", 3000, () => now);
    expect(s.pick()!.url.hostname).toBe("b0");
    s.markBroken(s.backends[0]!);
    expect(s.pick()!.url.hostname).toBe("b1");
    now += 3001;
    expect(s.pick()!.url.hostname).toBe("b0");
  });

  it("skips broken backends for -failTimeout and reports when all are broken", () => {
    let now = 0;
    const s = new BackendSet(urls(2), "least_loaded", 3000, () => now);
    s.markBroken(s.backends[0]!);
    for (let i = 0; i < 4; i++) {
      const b = s.pick()!;
      expect(b.url.hostname).toBe("b1");
      s.release(b);
    }
    s.markBroken(s.backends[1]!);
    expect(s.pick()).toBeUndefined();
    now = 3001;
    expect(s.pick()).toBeDefined();
  });
});
