import type { Labels } from "@strata/core";

/** One element of an instant query's answer. */
export interface VectorSample {
  readonly labels: Labels;
  readonly value: number;
}

/**
 * Where rules read from: an instant query at `time` (ms). The alert service implements it over
 * select's HTTP API; the rule unit-test runner over the PromQL engine in process. A scalar answer
 * is a one-element vector without labels. Rejects with a message on failure (the rule's health).
 */
export interface Datasource {
  query(expr: string, time: number, signal?: AbortSignal): Promise<readonly VectorSample[]>;
}

/** A sample a rule produces (recording results, ALERTS, ALERTS_FOR_STATE, stale markers). */
export interface OutputSample {
  readonly labels: Labels;
  readonly t: number;
  readonly v: number;
  /** A Prometheus stale marker (the series ended); `v` is then ignored. */
  readonly stale: boolean;
}

/** Where rule results go: the alert service buffers them for remote write; tests append to memory. */
export interface SampleSink {
  write(samples: readonly OutputSample[]): void;
}

/** An alert as Alertmanager's API v2 takes it. */
export interface NotifierAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339 times. */
  readonly startsAt: string;
  readonly endsAt: string;
  readonly generatorURL: string;
}

export interface Notifier {
  send(alerts: readonly NotifierAlert[]): void;
}
