// Open reports of conversations and messages: dismiss one, or block the reported user
// (their account suspended, the report actioned), with a reason for the audit log.
import { html, nothing, type TemplateResult } from "lit";

import { call, type Report } from "../../../contract/index.js";
import { functions } from "../firebase.js";
import { ago, errorLine } from "../ui.js";
import { type Outcome, QueuePage } from "../workqueue.js";

export class ReportsQueue extends QueuePage<Report> {
  protected readonly collectionPath = "reports";
  protected readonly waiting = "open";
  protected readonly heading = "Open reports";
  protected readonly noun = "reports";

  protected card(id: string, report: Report, outcome: Outcome): TemplateResult {
    const status = outcome.status ?? report.status ?? this.waiting;
    return html`
      <li class="card" data-id=${id}>
        <div class="body">
          <h3>${report.reason}${report.messageId ? " (a message)" : " (a conversation)"}</h3>
          ${report.excerpt ? html`<blockquote>${report.excerpt}</blockquote>` : nothing}
          ${report.note ? html`<p>Reporter's note: ${report.note}</p>` : nothing}
          <p class="muted">Reported user ${report.reportedUid ?? "unknown"} · by
            ${report.reporterId} · ${ago(report.createdAt)} · conversation
            ${report.conversationId}${report.listingId ? ` · listing ${report.listingId}` : ""}</p>
          <p>Status <span class="status" data-status=${status}>${status}</span></p>
          ${errorLine(outcome.error ?? null)}
          ${status === this.waiting ? this.reportActions(id, outcome) : nothing}
        </div>
      </li>`;
  }

  private reportActions(id: string, outcome: Outcome): TemplateResult {
    return this.actions(
      id,
      outcome,
      {
        name: "dismiss",
        label: "Dismiss",
        run: () => call(functions, "dismiss_report", { reportId: id }),
      },
      {
        name: "block",
        label: "Block the reported user",
        prompt: "Why the user is blocked",
        run: (reason) => call(functions, "block_reported_user", { reportId: id, reason }),
      },
    );
  }
}
