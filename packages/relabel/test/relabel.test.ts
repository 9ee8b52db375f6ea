import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BadDataError, labelsFromRecord, labelsToRecord } from "@strata/core";
import type { RelabelConfigInput, RelabelOptions } from "@strata/relabel";
import { Relabeler, expandTemplate, hashMod, SeriesSelector } from "@strata/relabel";

type Rec = Record<string, string>;

const run = (input: Rec, rules: RelabelConfigInput[], opts: RelabelOptions = {}): Rec | null => {
  const out = Relabeler.fromInputs(rules, opts).apply(labelsFromRecord(input));
  return out === null ? null : labelsToRecord(out);
};

// The cases of Prometheus' model/relabel TestRelabel, with their documented outputs.
const prometheusCases: [string, Rec, RelabelConfigInput[], Rec | null][] = [
  ["replace with ${1}", { a: "foo", b: "bar", c: "baz" },
    [{ source_labels: ["a"], regex: "f(.*)", target_label: "d", replacement: "ch${1}-ch${1}" }],
    { a: "foo", b: "bar", c: "baz", d: "choo-choo" }],
  ["chained replaces", { a: "foo", b: "bar", c: "baz" },
    [
      { source_labels: ["a", "b"], regex: "f(.*);(.*)r", target_label: "a", replacement: "b${1}${2}m" },
      { source_labels: ["c", "a"], regex: "(b).*b(.*)ba(.*)", target_label: "d", replacement: "$1$2$2$3" },
    ],
    { a: "boobam", b: "bar", c: "baz", d: "boooom" }],
  ["drop then replace", { a: "foo" },
    [{ source_labels: ["a"], regex: ".*o.*", action: "drop" }, { source_labels: ["a"], regex: "f(.*)", target_label: "d", replacement: "ch$1-ch$1" }],
    null],
  ["drop", { a: "foo", b: "bar" }, [{ source_labels: ["a"], regex: ".*o.*", action: "drop" }], null],
  ["replace $1 inner group", { a: "abc" }, [{ source_labels: ["a"], regex: ".*(b).*", target_label: "d", replacement: "$1" }], { a: "abc", d: "b" }],
  ["drop no match", { a: "foo" }, [{ source_labels: ["a"], regex: "no-match", action: "drop" }], { a: "foo" }],
  ["drop is anchored", { a: "foo" }, [{ source_labels: ["a"], regex: "f|o", action: "drop" }], { a: "foo" }],
  ["keep no match", { a: "foo" }, [{ source_labels: ["a"], regex: "no-match", action: "keep" }], null],
  ["keep match", { a: "foo" }, [{ source_labels: ["a"], regex: "f.*", action: "keep" }], { a: "foo" }],
  ["no replacement without a match", { a: "boo" }, [{ source_labels: ["a"], regex: "f", target_label: "b", replacement: "bar" }], { a: "boo" }],
  ["hashmod 1000 of baz", { a: "foo", b: "bar", c: "baz" }, [{ source_labels: ["c"], target_label: "d", action: "hashmod", modulus: 1000 }],
    { a: "foo", b: "bar", c: "baz", d: "976" }],
  ["hashmod with newline", { a: "foo\nbar" }, [{ source_labels: ["a"], target_label: "b", action: "hashmod", modulus: 1000 }],
    { a: "foo\nbar", b: "734" }],
  ["labelmap bar_${1}", { a: "foo", b1: "bar", b2: "baz" }, [{ regex: "(b.*)", replacement: "bar_${1}", action: "labelmap" }],
    { a: "foo", b1: "bar", b2: "baz", bar_b1: "bar", bar_b2: "baz" }],
  ["labelmap __meta", { a: "foo", __meta_my_bar: "aaa", __meta_my_baz: "bbb", __meta_other: "ccc" },
    [{ regex: "__meta_(my.*)", replacement: "${1}", action: "labelmap" }],
    { a: "foo", __meta_my_bar: "aaa", __meta_my_baz: "bbb", __meta_other: "ccc", my_bar: "aaa", my_baz: "bbb" }],
  ["target from group", { a: "some-name-value" },
    [{ source_labels: ["a"], regex: "some-([^-]+)-([^,]+)", replacement: "${2}", target_label: "${1}" }],
    { a: "some-name-value", name: "value" }],
  ["empty replacement is a no-op delete", { a: "some-name-value" },
    [{ source_labels: ["a"], regex: "some-([^-]+)-([^,]+)", replacement: "${3}", target_label: "${1}" }],
    { a: "some-name-value" }],
  ["invalid expanded target is skipped", { a: "some-name-0" },
    [
      { source_labels: ["a"], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}" },
      { source_labels: ["a"], regex: "some-([^-]+)(-[^,]+)", replacement: "${1}", target_label: "${3}" },
    ],
    { a: "some-name-0" }],
  ["real-life sd tags", { __meta_sd_tags: "path:/secret,job:some-job,label:foo=bar" },
    [
      { source_labels: ["__meta_sd_tags"], regex: "(?:.+,|^)path:(/[^,]+).*", replacement: "${1}", target_label: "__metrics_path__" },
      { source_labels: ["__meta_sd_tags"], regex: "(?:.+,|^)job:([^,]+).*", replacement: "${1}", target_label: "job" },
      { source_labels: ["__meta_sd_tags"], regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", replacement: "${2}", target_label: "${1}" },
    ],
    { __meta_sd_tags: "path:/secret,job:some-job,label:foo=bar", __metrics_path__: "/secret", job: "some-job", foo: "bar" }],
  ["issue 12283", { __meta_kubernetes_pod_container_port_name: "foo", __meta_kubernetes_pod_annotation_XXX_metrics_port: "9091" },
    [
      { regex: "^__meta_kubernetes_pod_container_port_name$", action: "labeldrop" },
      { source_labels: ["__meta_kubernetes_pod_annotation_XXX_metrics_port"], regex: "(.+)", replacement: "metrics", target_label: "__meta_kubernetes_pod_container_port_name" },
      { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: "^metrics$", action: "keep" },
    ],
    { __meta_kubernetes_pod_annotation_XXX_metrics_port: "9091", __meta_kubernetes_pod_container_port_name: "metrics" }],
  ["labelkeep", { a: "foo", b1: "bar", b2: "baz" }, [{ regex: "(b.*)", action: "labelkeep" }], { b1: "bar", b2: "baz" }],
  ["labeldrop", { a: "foo", b1: "bar", b2: "baz" }, [{ regex: "(b.*)", action: "labeldrop" }], { a: "foo" }],
  ["upper and lower", { foo: "bAr123Foo" },
    [{ source_labels: ["foo"], action: "uppercase", target_label: "foo_uppercase" }, { source_labels: ["foo"], action: "lowercase", target_label: "foo_lowercase" }],
    { foo: "bAr123Foo", foo_lowercase: "bar123foo", foo_uppercase: "BAR123FOO" }],
  ["keepequal equal", { __tmp_port: "1234", __port1: "1234", __port2: "5678" }, [{ source_labels: ["__tmp_port"], action: "keepequal", target_label: "__port1" }],
    { __tmp_port: "1234", __port1: "1234", __port2: "5678" }],
  ["dropequal equal", { __tmp_port: "1234", __port1: "1234", __port2: "5678" }, [{ source_labels: ["__tmp_port"], action: "dropequal", target_label: "__port1" }], null],
  ["dropequal differ", { __tmp_port: "1234", __port1: "1234", __port2: "5678" }, [{ source_labels: ["__tmp_port"], action: "dropequal", target_label: "__port2" }],
    { __tmp_port: "1234", __port1: "1234", __port2: "5678" }],
  ["keepequal differ", { __tmp_port: "1234", __port1: "1234", __port2: "5678" }, [{ source_labels: ["__tmp_port"], action: "keepequal", target_label: "__port2" }], null],
];

// Further cases: defaults, the replace fast path, `if:` selectors, named groups, UTF-8.
const moreCases: [string, Rec, RelabelConfigInput[], Rec | null][] = [
  ["defaults: copy a label", { __name__: "up", job: "a" }, [{ source_labels: ["job"], target_label: "j" }], { __name__: "up", job: "a", j: "a" }],
  ["fast path sets a constant", { __name__: "up" }, [{ target_label: "env", replacement: "prod" }], { __name__: "up", env: "prod" }],
  ["empty replacement deletes", { __name__: "up", env: "x" }, [{ target_label: "env", replacement: "" }], { __name__: "up" }],
  ["separator joins", { a: "1", b: "2" }, [{ source_labels: ["a", "b"], separator: "-", target_label: "c" }], { a: "1", b: "2", c: "1-2" }],
  ["missing source is empty", { a: "1" }, [{ source_labels: ["a", "zz"], target_label: "c" }], { a: "1", c: "1;" }],
  ["named group", { a: "host:9100" }, [{ source_labels: ["a"], regex: "(?P<host>[^:]+):.*", target_label: "h", replacement: "$host" }], { a: "host:9100", h: "host" }],
  ["$$ is a dollar", { a: "x" }, [{ source_labels: ["a"], target_label: "b", replacement: "$$1" }], { a: "x", b: "$1" }],
  ["$1x is group 1x (empty)", { a: "x" }, [{ source_labels: ["a"], target_label: "b", replacement: "v$1x" }], { a: "x", b: "v" }],
  ["dot matches newline", { a: "x\ny" }, [{ source_labels: ["a"], regex: "x.y", action: "keep" }], { a: "x\ny" }],
  ["action is case-insensitive", { a: "x" }, [{ source_labels: ["a"], regex: "x", action: "DROP" }], null],
  ["regex list joins with |", { a: "y" }, [{ source_labels: ["a"], regex: ["x", "y"], action: "drop" }], null],
  ["if: matches -> rule applies", { __name__: "up", job: "a" }, [{ if: 'up{job="a"}', target_label: "hit", replacement: "1" }], { __name__: "up", job: "a", hit: "1" }],
  ["if: no match -> skipped", { __name__: "up", job: "b" }, [{ if: 'up{job="a"}', target_label: "hit", replacement: "1" }], { __name__: "up", job: "b" }],
  ["if: drop", { __name__: "up", job: "a" }, [{ if: '{job=~"a|b"}', action: "drop" }], null],
  ["if: keep drops non-matching", { __name__: "up", job: "c" }, [{ if: '{job=~"a|b"}', action: "keep" }], null],
  ["if: keep keeps matching", { __name__: "up", job: "a" }, [{ if: '{job=~"a|b"}', action: "keep" }], { __name__: "up", job: "a" }],
  ["if: list is or", { __name__: "x" }, [{ if: ["up", "x"], action: "drop" }], null],
  ["if: or inside braces", { __name__: "x", b: "2" }, [{ if: '{a="1" or b="2"}', action: "drop" }], null],
  ["if: quoted utf-8 name", { __name__: "my.metric" }, [{ if: '{"my.metric"}', action: "drop" }], null],
  ["utf-8 target label", { a: "v" }, [{ source_labels: ["a"], target_label: "a.b" }], { a: "v", "a.b": "v" }],
  ["keep_metrics keeps matching names", { __name__: "up", a: "1" }, [{ action: "keep_metrics", regex: "up|x" }], { __name__: "up", a: "1" }],
  ["keep_metrics drops others", { __name__: "go_gc" }, [{ action: "keep_metrics", regex: "up|x" }], null],
  ["drop_metrics", { __name__: "go_gc" }, [{ action: "drop_metrics", regex: "go_.*" }], null],
  ["lowercase of empty deletes", { t: "X" }, [{ source_labels: ["nope"], action: "lowercase", target_label: "t" }], {}],
];

describe("Relabeler", () => {
  it.each(prometheusCases)("prometheus: %s", (_n, input, rules, want) => {
    expect(run(input, rules)).toEqual(want);
  });
  it.each(moreCases)("%s", (_n, input, rules, want) => {
    expect(run(input, rules)).toEqual(want);
  });

  it("hashmod is the last 8 md5 bytes big-endian mod m", () => {
    // md5("baz") = 73feffa4b7f6bb68e44cf984c85f6e88; last 8 bytes 0xe44cf984c85f6e88.
    expect(hashMod("baz", 1000n)).toBe(0xe44cf984c85f6e88n % 1000n);
    expect(hashMod("baz", 2n ** 64n - 1n)).toBe(0xe44cf984c85f6e88n);
  });

  it("loads YAML", () => {
    const r = Relabeler.fromYaml(`
- action: replace
  source_labels: [job]
  regex: "(.*)-prod"
  target_label: env
  replacement: production
- action: labeldrop
  regex: "tmp_.*"
- if: '{__name__=~"go_.*"}'
  action: drop
`);
    expect(r.length).toBe(3);
    expect(labelsToRecord(r.apply(labelsFromRecord({ __name__: "up", job: "api-prod", tmp_x: "1" }))!)).toEqual({
      __name__: "up", job: "api-prod", env: "production",
    });
    expect(r.apply(labelsFromRecord({ __name__: "go_gc" }))).toBeNull();
    expect(Relabeler.fromYaml("relabel_configs:\n- target_label: a\n  replacement: b\n").length).toBe(1);
    expect(Relabeler.fromYaml("").length).toBe(0);
  });
});

const invalid: [string, string, RelabelOptions, string][] = [
  ["unknown action", "- action: foo\n", {}, 'relabel_configs[0]: action: unknown relabel action "foo"'],
  ["empty action", "- action: ''\n", {}, "relabel_configs[0]: action: relabel action cannot be empty"],
  ["replace needs target", "- source_labels: [a]\n", {}, "relabel_configs[0]: target_label: relabel configuration for replace action requires 'target_label' value"],
  ["lowercase needs target", "- action: lowercase\n", {}, "relabel_configs[0]: target_label: relabel configuration for lowercase action requires 'target_label' value"],
  ["lowercase template target", "- action: lowercase\n  target_label: ${3}\n", {}, 'relabel_configs[0]: target_label: "${3}" is invalid \'target_label\' for lowercase action'],
  ["legacy 0${3}", "- source_labels: [a]\n  target_label: 0${3}\n", { legacyNames: true }, 'relabel_configs[0]: target_label: "0${3}" is invalid \'target_label\' for replace action'],
  ["legacy -${3}", "- source_labels: [a]\n  target_label: -${3}\n", { legacyNames: true }, 'relabel_configs[0]: target_label: "-${3}" is invalid \'target_label\' for replace action'],
  ["hashmod zero modulus", "- action: hashmod\n  target_label: x\n", {}, "relabel_configs[0]: modulus: relabel configuration for hashmod requires non-zero modulus"],
  ["labeldrop extra field", "- action: labeldrop\n  regex: a\n  source_labels: [x]\n", {}, "relabel_configs[0]: source_labels: labeldrop action requires only 'regex', and no other fields"],
  ["keepequal with regex", "- action: keepequal\n  source_labels: [a]\n  target_label: b\n  regex: x\n", {}, "relabel_configs[0]: regex: keepequal action requires only 'source_labels' and 'target_label', and no other fields"],
  ["bad regex (RE2 rejects backrefs)", "- target_label: a\n- source_labels: [a]\n  regex: '(a)\\1'\n  action: drop\n", {}, "relabel_configs[1]: regex: invalid regular expression"],
  ["lookahead rejected", "- action: keep\n  source_labels: [a]\n  regex: '(?=a)'\n", {}, "relabel_configs[0]: regex: invalid regular expression"],
  ["keep_metrics with source_labels", "- action: keep_metrics\n  source_labels: [a]\n  regex: x\n", {}, "relabel_configs[0]: source_labels: keep_metrics action matches regex against __name__ and takes no 'source_labels'"],
  ["unknown field", "- targetlabel: x\n", {}, "relabel_configs[0]: targetlabel: unknown field"],
  ["source_labels not a list", "- source_labels: a\n  target_label: x\n", {}, "relabel_configs[0]: source_labels: want a list of label names"],
  ["bad if", "- if: '{a=}'\n  action: drop\n", {}, "relabel_configs[0]: if: invalid series selector"],
  ["not a list", "a: 1\n", {}, "relabel config: want a list of relabel rules"],
  ["bad yaml", "- [\n", {}, "relabel config: invalid YAML"],
  ["negative modulus", "- action: hashmod\n  target_label: x\n  modulus: -1\n", {}, "relabel_configs[0]: modulus: want a non-negative integer"],
];

describe("Relabeler config errors", () => {
  it.each(invalid)("%s", (_n, yaml, opts, want) => {
    let err: unknown;
    try {
      Relabeler.fromYaml(yaml, opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadDataError);
    expect((err as Error).message).toContain(want);
  });
});

describe("expandTemplate (Go regexp.Expand)", () => {
  const caps = (groups: (string | null)[], named: Record<string, number> = {}) => ({
    group: (i: number) => groups[i] ?? null,
    groupCount: groups.length - 1,
    named,
  });
  const c = caps(["abc", "a", "b", null], { x: 2 });
  it.each([
    ["$1", "a"], ["${1}", "a"], ["${1}x", "ax"], ["$1x", ""], ["$x", "b"], ["${x}", "b"], ["$3", ""], ["$9", ""],
    ["$$", "$"], ["$", "$"], ["${", "${"], ["${}", "${}"], ["${1", "${1"], ["a$", "a$"], ["$01", ""], ["$0", "abc"], ["plain", "plain"],
  ])("%s → %s", (t, want) => {
    expect(expandTemplate(t, c)).toBe(want);
  });
});

describe("SeriesSelector", () => {
  it.each([
    ['up{job="a"}', { __name__: "up", job: "a" }, true],
    ['up{job="a"}', { __name__: "up", job: "b" }, false],
    ['{job!="a"}', { __name__: "up" }, true],
    ['{job=~""}', { __name__: "up" }, true],
    ['{job!~"a.*"}', { __name__: "up", job: "ab" }, false],
    ["up", { __name__: "up" }, true],
    ["{a='x', b=`y`}", { a: "x", b: "y" }, true],
  ] as [string, Rec, boolean][])("%s on %j", (sel, labels, want) => {
    expect(SeriesSelector.parse(sel).matches(labelsFromRecord(labels))).toBe(want);
  });
  it.each(["", "{", '{a="b"', "{a}", '{a=~"("}', 'up{a="b"} x'])("rejects %j", (sel) => {
    expect(() => SeriesSelector.parse(sel)).toThrow(BadDataError);
  });
});

describe("Relabeler properties", () => {
  const labelArb = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,5}$/), fc.string({ maxLength: 8 }), { maxKeys: 6 });
  it("no rules = identity on non-empty values; output is sorted and has no empty values", () => {
    const r = Relabeler.fromInputs([{ source_labels: ["a", "b"], target_label: "c" }, { regex: "z.*", action: "labeldrop" }]);
    fc.assert(
      fc.property(labelArb, (rec) => {
        const out = r.apply(labelsFromRecord(rec));
        expect(out).not.toBeNull();
        for (let i = 1; i < out!.length; i++) expect(out![i - 1]!.name < out![i]!.name).toBe(true);
        for (const l of out!) expect(l.value).not.toBe("");
      }),
      { numRuns: 200 },
    );
    expect(labelsToRecord(new Relabeler([]).apply(labelsFromRecord({ a: "1" }))!)).toEqual({ a: "1" });
  });
  it("hashmod is always below the modulus", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 2 ** 40 }), (s, m) => hashMod(s, BigInt(m)) < BigInt(m)),
      { numRuns: 200 },
    );
  });
});

describe("fuzz: config and selector parsing only throw BadDataError", () => {
  const onlyBadData = (f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof BadDataError)) throw err;
    }
  };
  const seedYaml = `- source_labels: [a, b]\n  separator: ";"\n  regex: "(.*)-(?P<x>.+)"\n  target_label: "\${1}_t"\n  replacement: "$x"\n  action: replace\n  if: '{__name__=~"up|x", job!="a"}'\n- action: hashmod\n  modulus: 8\n  target_label: h\n`;
  const mutate = fc.array(fc.tuple(fc.nat(), fc.constantFrom(..."{}[]:-'\"\\$()|*?\n ,=~!#&@".split("")), fc.boolean()), { minLength: 1, maxLength: 6 }).map((edits) => {
    let s = seedYaml;
    for (const [pos, ch, ins] of edits) {
      const p = pos % (s.length + 1);
      s = ins ? s.slice(0, p) + ch + s.slice(p) : s.slice(0, p) + ch + s.slice(p + 1);
    }
    return s;
  });
  it("random YAML text", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => onlyBadData(() => Relabeler.fromYaml(s))), { numRuns: 300 });
  });
  it("mutated valid YAML, applied to a label set", () => {
    fc.assert(
      fc.property(mutate, (s) =>
        onlyBadData(() => Relabeler.fromYaml(s).apply(labelsFromRecord({ __name__: "up", a: "x-y", b: "z" })))),
      { numRuns: 300 },
    );
  });
  it("random selectors", () => {
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => onlyBadData(() => SeriesSelector.parse(s))), { numRuns: 500 });
  });
});

describe("memoized regex results", () => {
  it("a long-lived Relabeler answers like a fresh one, also past the memo size", () => {
    const yaml = `
- source_labels: [a]
  regex: "(x+)(y*)"
  target_label: "t_$1"
  replacement: "$2"
- action: keep
  source_labels: [b]
  regex: "k.*|"
- action: hashmod
  source_labels: [a]
  modulus: 7
  target_label: h
- action: labelmap
  regex: "l_(.*)"
  replacement: "m_$1"
`;
    const shared = Relabeler.fromYaml(yaml);
    const rec = fc.record({ a: fc.stringMatching(/^x{0,3}y{0,2}z?$/), b: fc.constantFrom("", "k1", "q"), l_q: fc.string({ maxLength: 2 }) });
    fc.assert(
      fc.property(fc.array(rec, { minLength: 1, maxLength: 50 }), (recs) => {
        for (const r of recs) {
          const labels = labelsFromRecord(r);
          expect(shared.apply(labels)).toEqual(Relabeler.fromYaml(yaml).apply(labels));
        }
      }),
      { numRuns: 100 },
    );
    for (let i = 0; i < 5000; i++) shared.apply(labelsFromRecord({ a: `x${"y".repeat(i % 50)}`, b: `k${i}` }));
    expect(labelsToRecord(shared.apply(labelsFromRecord({ a: "xxy", b: "k" }))!)).toEqual({ a: "xxy", b: "k", t_xx: "y", h: String(hashMod("xxy", 7n)) });
  });
});
