import { defineFlags, displayFlags, flag, formatFlagsPage } from "@strata/core";
import { describe, expect, it } from "vitest";

describe("displayFlags (/flags, /api/v1/status/flags)", () => {
  const specs = defineFlags({
    httpListenAddr: flag.string(":8481", "listen"),
    "search.maxQueryDuration": flag.duration("30s", "max"),
    storageNode: flag.stringList([], "nodes"),
    "httpAuth.password": flag.string("", "basic auth password"),
    "auth.authKey": flag.string("", "key"),
    "datasource.bearerToken": flag.string("", "token"),
    "tls.keySecret": flag.string("", "secret"),
    "remoteWrite.url": flag.stringList([], "urls"),
  });

  it.each([
    ["httpListenAddr", "127.0.0.1:1"],
    ["search.maxQueryDuration", "1m"],
    ["storageNode", "a:8401,b:8401"],
    ["httpAuth.password", "secret"],
    ["auth.authKey", "secret"],
    ["datasource.bearerToken", "secret"],
    ["tls.keySecret", "secret"],
    ["remoteWrite.url", "https://u:secret@a/api/v1/write,http://b:9/x,http://v@c/"],
  ])("-%s shows %j", (name, want) => {
    const shown = displayFlags(specs, {
      httpListenAddr: "127.0.0.1:1",
      "search.maxQueryDuration": 60_000,
      storageNode: ["a:8401", "b:8401"],
      "httpAuth.password": "hunter2",
      "auth.authKey": "k3y",
      "datasource.bearerToken": "t0ken",
      "tls.keySecret": "s3cret",
      "remoteWrite.url": ["https://u:pa55@a/api/v1/write", "http://b:9/x", "http://v@c/"],
    });
    expect(shown[name]).toBe(want);
    expect(JSON.stringify(shown)).not.toMatch(/hunter2|k3y|t0ken|s3cret|pa55/);
  });
});

describe("formatFlagsPage (/flags)", () => {
  it("writes one -name=\"value\" line per flag, values JSON-quoted", () => {
    expect(formatFlagsPage({ a: "x", "b.c": 'say "hi"', d: "" })).toBe('-a="x"\n-b.c="say \\"hi\\""\n-d=""\n');
  });
});
