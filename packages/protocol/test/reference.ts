// Reference decoders built on the generated protobuf-es code and @strata/core's object-based
// label functions. The hand-written decoders must agree with these.
import { fromBinary } from "@bufbuild/protobuf";
import {
  BadDataError,
  encodeMetricName,
  normalizeLabels,
  validateLabels,
  type Label,
  type LabelLimits,
  type RowsBatchWriter,
  type Tenant,
} from "@strata/core";
import { prompbRemote, writev2 } from "@strata/protocol";

export interface RefResult {
  samples: number;
  series: number;
  histograms: number;
  exemplars: number;
}

function ts(t: bigint): number {
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw new BadDataError("timestamp out of range");
  return n;
}

function write(labels: Label[], tenant: Tenant, limits: LabelLimits, samples: readonly { value: number; timestamp: bigint }[], out: RowsBatchWriter): void {
  const canon = normalizeLabels(labels);
  validateLabels(canon, limits);
  const name = encodeMetricName({ tenant, labels: canon });
  for (const s of samples) out.add(name, ts(s.timestamp), s.value);
}

export function referenceV1(body: Uint8Array, tenant: Tenant, limits: LabelLimits, out: RowsBatchWriter): RefResult {
  const req = fromBinary(prompbRemote.WriteRequestSchema, body);
  const res: RefResult = { samples: 0, series: 0, histograms: 0, exemplars: 0 };
  for (const t of req.timeseries) {
    write(t.labels.map((l) => ({ name: l.name, value: l.value })), tenant, limits, t.samples, out);
    res.series++;
    res.samples += t.samples.length;
    res.histograms += t.histograms.length;
    res.exemplars += t.exemplars.length;
  }
  return res;
}

export function referenceV2(body: Uint8Array, tenant: Tenant, limits: LabelLimits, out: RowsBatchWriter): RefResult {
  const req = fromBinary(writev2.RequestSchema, body);
  const res: RefResult = { samples: 0, series: 0, histograms: 0, exemplars: 0 };
  const sym = (r: number): string => {
    if (r >= req.symbols.length) throw new BadDataError(`ref ${r} out of range`);
    return req.symbols[r]!;
  };
  for (const t of req.timeseries) {
    const labels: Label[] = [];
    for (const r of t.labelsRefs) sym(r);
    if (t.labelsRefs.length % 2 !== 0) throw new BadDataError("odd labels_refs");
    for (let i = 0; i < t.labelsRefs.length; i += 2) {
      labels.push({ name: sym(t.labelsRefs[i]!), value: sym(t.labelsRefs[i + 1]!) });
    }
    if (t.metadata) {
      if (t.metadata.helpRef !== 0) sym(t.metadata.helpRef);
      if (t.metadata.unitRef !== 0) sym(t.metadata.unitRef);
    }
    write(labels, tenant, limits, t.samples, out);
    res.series++;
    res.samples += t.samples.length;
    res.histograms += t.histograms.length;
    res.exemplars += t.exemplars.length;
  }
  return res;
}
