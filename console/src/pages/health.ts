// The backend's health, as uptime checks see it: GET /health (a Hosting rewrite to the
// `health` function): version, emulated or not, and each check, 503 naming what failed.
import { html, nothing, type TemplateResult } from "lit";

import { describeError } from "../errors.js";
import { ConsoleElement, errorLine, shown } from "../ui.js";

interface HealthReport {
  status?: string;
  failed?: string[];
  version?: string;
  revision?: string | null;
  emulated?: boolean;
  checks?: Record<string, { ok: boolean } & Record<string, unknown>>;
}

export class HealthPanel extends ConsoleElement {
  static override properties = {
    httpStatus: { state: true },
    report: { state: true },
    error: { state: true },
  };
  declare httpStatus: number | null;
  declare report: HealthReport | null;
  declare error: string | null;

  constructor() {
    super();
    this.httpStatus = null;
    this.report = null;
    this.error = null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    this.error = null;
    try {
      const response = await fetch("/health", { cache: "no-store" });
      this.httpStatus = response.status;
      const text = await response.text();
      try {
        this.report = JSON.parse(text) as HealthReport;
      } catch {
        this.report = null;
        this.error = `/health answered ${response.status} with no report: ${text.slice(0, 300)}`;
      }
    } catch (err) {
      this.error = `/health did not answer: ${describeError(err)}`;
    }
  }

  override render(): TemplateResult {
    const report = this.report;
    return html`
      <section class="page" data-testid="health">
        <header class="page-head">
          <h2>Health</h2>
          ${this.httpStatus !== null
            ? html`<span class="status" data-status=${report?.status ?? "unknown"}
                data-http=${this.httpStatus}>${report?.status ?? "unknown"} (HTTP
                ${this.httpStatus})</span>`
            : html`<span class="muted">Loading…</span>`}
          <button class="link" @click=${() => void this.load()}>Refresh</button>
        </header>
        ${errorLine(this.error)}
        ${report ? this.details(report) : nothing}
      </section>`;
  }

  private details(report: HealthReport): TemplateResult {
    return html`
      <p>Version ${report.version ?? "?"}${report.revision ? ` (${report.revision})` : ""} ·
        ${report.emulated ? "on the emulators" : "deployed"}
        ${report.failed?.length ? html` · <strong class="error">failing: ${report.failed.join(", ")}</strong>` : nothing}</p>
      <table class="checks-table">
        <thead><tr><th>Check</th><th>Result</th><th>Figures</th></tr></thead>
        <tbody>
          ${Object.entries(report.checks ?? {}).map(
            ([name, { ok, ...figures }]) => html`<tr data-check=${name} class=${ok ? "pass" : "fail"}>
              <td>${name}</td><td>${ok ? "ok" : "failed"}</td>
              <td>${Object.entries(figures).map(([k, v]) => (k === "ms" ? `${shown(v)} ms` : `${k} ${shown(v)}`)).join(" · ")}</td>
            </tr>`,
          )}
        </tbody>
      </table>`;
  }
}
