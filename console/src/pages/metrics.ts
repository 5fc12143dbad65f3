// Per function: requests, success rate and latency percentiles over the last hour (the
// 12 five-minute windows) and the last day (the 24 hourly ones), read by id: 36 document
// reads per refresh, however busy the functions were.
import { getDoc } from "firebase/firestore";
import { html, nothing, type TemplateResult } from "lit";

import { describeError } from "../errors.js";
import { docOf } from "../firebase.js";
import {
  lastDayIds,
  lastHourIds,
  type MetricsWindow,
  percentile,
  sumWindows,
  type Totals,
} from "../metrics.js";
import { ConsoleElement, errorLine } from "../ui.js";

const PERCENTILES = [50, 95, 99];

async function windows(ids: string[]): Promise<MetricsWindow[]> {
  const read = await Promise.all(ids.map((id) => getDoc(docOf<MetricsWindow>("_metrics", id))));
  return read.flatMap((snapshot) => (snapshot.exists() ? [snapshot.data()] : []));
}

function latency(totals: Totals | undefined, p: number): string {
  const quantile = totals && percentile(totals, p / 100);
  if (!quantile) return "—";
  return quantile.unbounded ? `> ${quantile.ms} ms` : `${quantile.ms.toFixed(1)} ms`;
}

function successRate(totals: Totals | undefined): string {
  if (!totals || totals.count === 0) return "—";
  return `${((100 * totals.ok) / totals.count).toFixed(1)} %`;
}

export class MetricsPanel extends ConsoleElement {
  static override properties = {
    hour: { state: true },
    day: { state: true },
    windowsFound: { state: true },
    error: { state: true },
    at: { state: true },
  };
  declare hour: Map<string, Totals> | null;
  declare day: Map<string, Totals> | null;
  declare windowsFound: number;
  declare error: string | null;
  declare at: Date | null;

  constructor() {
    super();
    this.hour = null;
    this.day = null;
    this.windowsFound = 0;
    this.error = null;
    this.at = null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    this.error = null;
    const now = new Date();
    try {
      const [hour, day] = await Promise.all([windows(lastHourIds(now)), windows(lastDayIds(now))]);
      this.hour = sumWindows(hour);
      this.day = sumWindows(day);
      this.windowsFound = hour.length + day.length;
      this.at = now;
    } catch (err) {
      this.error = describeError(err);
    }
  }

  override render(): TemplateResult {
    const { hour, day } = this;
    const names = [...new Set([...(day?.keys() ?? []), ...(hour?.keys() ?? [])])].sort(
      (a, b) => (hour?.get(b)?.count ?? 0) - (hour?.get(a)?.count ?? 0) || a.localeCompare(b),
    );
    return html`
      <section class="page" data-testid="metrics">
        <header class="page-head">
          <h2>Metrics</h2>
          <span class="muted">${this.at
            ? `as of ${this.at.toLocaleTimeString("en-GB")}: 36 windows read, ${this.windowsFound} with data`
            : "Loading…"}</span>
          <button class="link" @click=${() => void this.load()}>Refresh</button>
        </header>
        ${errorLine(this.error)}
        ${this.at && names.length === 0 ? html`<p class="muted">No function has reported
          measurements in the last day.</p>` : nothing}
        <table class="metrics">
          <thead>
            <tr><th rowspan="2">Function</th><th colspan="5">Last hour</th><th colspan="5">Last day</th></tr>
            <tr>${[0, 1].map(() => html`<th>Requests</th><th>Success</th>
              ${PERCENTILES.map((p) => html`<th>p${p}</th>`)}`)}</tr>
          </thead>
          <tbody>
            ${names.map(
              (name) => html`<tr data-function=${name}>
                <td>${name}</td>
                ${[hour?.get(name), day?.get(name)].map(
                  (t) => html`<td data-stat="count">${t?.count ?? 0}</td>
                    <td data-stat="success">${successRate(t)}</td>
                    ${PERCENTILES.map((p) => html`<td data-stat="p${p}">${latency(t, p)}</td>`)}`,
                )}
              </tr>`,
            )}
          </tbody>
        </table>
        <p class="muted">Percentiles are read from latency histograms, linearly within the
          bucket each falls in ("> N ms": above the last bucket's bound). Each instance
          flushes its counters at most once a minute.</p>
      </section>`;
  }
}
