import type { Logger } from "@strata/core";
import type { Notifier, NotifierAlert } from "../types.js";
import { HttpClient, joinUrl, type ClientOptions } from "./http.js";

/**
 * Sends alerts to every Alertmanager (-notifier.url, repeated) through API v2
 * (POST <url>/api/v2/alerts). A failed send is counted and logged; the next evaluation resends
 * firing alerts and, for 15 minutes, resolved ones (Prometheus does the same).
 */

export interface AlertmanagerTarget {
  readonly url: string;
  readonly options: ClientOptions;
}

class Target {
  readonly client: HttpClient;
  readonly endpoint: string;
  sent = 0;
  errors = 0;
  constructor(readonly url: string, options: ClientOptions) {
    this.client = new HttpClient(options);
    this.endpoint = joinUrl(url, "/api/v2/alerts");
  }
}

export class AlertmanagerNotifier implements Notifier {
  readonly targets: readonly Target[];
  private readonly inflight = new Set<Promise<void>>();

  constructor(targets: readonly AlertmanagerTarget[], private readonly log?: Logger) {
    this.targets = targets.map((t) => new Target(t.url, t.options));
  }

  send(alerts: readonly NotifierAlert[]): void {
    if (alerts.length === 0) return;
    const body = JSON.stringify(alerts);
    for (const t of this.targets) {
      const p = this.post(t, body, alerts.length).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async post(t: Target, body: string, n: number): Promise<void> {
    try {
      const res = await t.client.request(t.endpoint, { method: "POST", headers: { "content-type": "application/json" }, body });
      if (res.status < 200 || res.status >= 300) throw new Error(`${t.endpoint} answered ${res.status}: ${res.body.toString("utf8").slice(0, 300)}`);
      t.sent += n;
    } catch (err) {
      t.errors++;
      this.log?.error({ notifier: t.url, alerts: n, err: err instanceof Error ? err.message : String(err) }, "cannot send alerts to Alertmanager");
    }
  }

  /** Waits for sends in flight. */
  async close(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
}
