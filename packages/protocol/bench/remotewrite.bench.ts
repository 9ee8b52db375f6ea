/**
 * pnpm bench:remotewrite [--series=100000] [--points=10] [--perRequest=10000] [--rounds=3]
 *
 * Decoding cost of Prometheus remote write 1.0 bodies as insert sees them: node_exporter-like
 * series (5 labels, ~100 bytes of labels each), one sample per series per request (how
 * Prometheus shards its queue), the same series in every round of requests. Prints ns per
 * sample and CPU seconds per million samples for RemoteWriteDecoder.decodeV1 into a
 * RowsBatchWriter (snappy excluded), median of rounds.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DEFAULT_TENANT, RowsBatchWriter } from "@strata/core";
import { RemoteWriteDecoder } from "@strata/protocol";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--?/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const SERIES = Number(args.get("series") ?? 100_000);
const POINTS = Number(args.get("points") ?? 10);
const PER_REQUEST = Number(args.get("perRequest") ?? 10_000);
const ROUNDS = Number(args.get("rounds") ?? 3);

const NAMES = ["node_cpu_seconds_total", "node_memory_MemFree_bytes", "node_network_receive_bytes_total", "node_disk_read_bytes_total", "node_load1"];
/** Encoded `repeated Label labels = 1` of series i (constant over time). */
function seriesLabels(i: number): Uint8Array {
  const host = Math.floor(i / 200);
  const j = i % 200;
  const w = new BinaryWriter();
  for (const [n, v] of [["__name__", NAMES[j % NAMES.length]!], ["cpu", String(Math.floor(j / NAMES.length))], ["instance", `host-${host}.example.com:9100`], ["job", "node"], ["region", `region-${host % 4}`]] as const) {
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(n).tag(2, WireType.LengthDelimited).string(v).join();
  }
  return w.finish();
}
const labels = Array.from({ length: SERIES }, (_, i) => seriesLabels(i));
/** A WriteRequest with one sample of each series in [s0, s0 + PER_REQUEST). */
function body(point: number, s0: number): Uint8Array {
  const w = new BinaryWriter();
  const ts = 1_700_000_000_000 + point * 15_000;
  for (let i = s0; i < Math.min(SERIES, s0 + PER_REQUEST); i++) {
    w.tag(1, WireType.LengthDelimited).fork().raw(labels[i]!);
    w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.Bit64).double(i * 1.5 + point).tag(2, WireType.Varint).int64(ts).join();
    w.join();
  }
  return w.finish();
}
const bodies: Uint8Array[] = [];
for (let p = 0; p < POINTS; p++) for (let s0 = 0; s0 < SERIES; s0 += PER_REQUEST) bodies.push(body(p, s0));
const samples = SERIES * POINTS;

const decoder = new RemoteWriteDecoder({ maxLabels: 40, maxLabelNameLen: 256, maxLabelValueLen: 4096 }, { labelsCacheBytes: Number(args.get("labelsCacheBytes") ?? 64 << 20) });
const w = new RowsBatchWriter(4 << 20);
const perSample: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of bodies) {
    w.reset();
    decoder.decodeV1(b, DEFAULT_TENANT, w);
  }
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  perSample.push((ms * 1e6) / samples);
  console.log(`round ${r + 1}: ${(ms / 1000).toFixed(2)} s, ${((ms * 1e6) / samples).toFixed(0)} ns/sample, CPU ${((c.user + c.system) / 1e6 / (samples / 1e6)).toFixed(3)} s per million samples`);
}
perSample.sort((a, b) => a - b);
console.log(`remote write 1.0 decode, ${SERIES} series × ${POINTS} points, ${PER_REQUEST}/request: median ${perSample[Math.floor(ROUNDS / 2)]!.toFixed(0)} ns/sample`);
const lc = decoder.labelsCache;
if (lc) console.log(`labels cache: ${lc.hits} hits, ${lc.misses} misses, ${lc.resets} resets, ${lc.entries} entries, ${(lc.bytes / 1048576).toFixed(1)} MiB`);
