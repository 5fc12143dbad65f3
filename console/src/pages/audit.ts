// The audit log, live: the newest 50 entries (a listener: a new entry appears as it is
// written), optionally those of one actor, one action or one target.
import {
  limit,
  onSnapshot,
  orderBy,
  query,
  type QueryConstraint,
  Timestamp,
  where,
} from "firebase/firestore";
import { html, nothing, type TemplateResult } from "lit";

import type { AuditChange, AuditEntry, AuditRecord } from "../../../contract/index.js";
import { describeError } from "../errors.js";
import { collectionOf } from "../firebase.js";
import { ConsoleElement, errorLine, shown } from "../ui.js";

const SHOWN = 50;
const FILTERS = { actorUid: "Actor uid", action: "Action", target: "Target" } as const;
type FilterField = keyof typeof FILTERS;

/** An entry as the log stores it, or as find_user returns it (``at`` as ISO text). */
export type AuditRow = AuditEntry | AuditRecord;

/** One entry as a table row; ``fresh``: it arrived while the page was open. */
export function auditRow(id: string, entry: AuditRow, fresh = false): TemplateResult {
  const at = entry.at instanceof Timestamp ? entry.at.toDate() : entry.at ? new Date(entry.at) : null;
  return html`
    <tr data-id=${id} data-action=${entry.action} class=${fresh ? "fresh" : ""}>
      <td>${at?.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" }) ?? "—"}</td>
      <td>${entry.action}</td>
      <td>${entry.actorUid}</td>
      <td data-field="target">${entry.target}</td>
      <td>${change(entry.change)}${entry.reason ? html`<div class="muted">“${entry.reason}”</div>` : nothing}</td>
      <td class="muted">${entry.requestId}</td>
    </tr>`;
}

export function auditTable(rows: TemplateResult[]): TemplateResult {
  return html`
    <table class="audit">
      <thead><tr><th>When</th><th>Action</th><th>Actor</th><th>Target</th><th>Change</th>
        <th>Request id</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`;
}

/** Each field the action changed, "field: before → after" (a lookup changed none). */
function change({ before, after }: AuditChange): TemplateResult {
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  if (fields.length === 0) return html`<span class="muted">no change</span>`;
  return html`${fields.map((f) => html`<div>${f}: ${shown(before[f])} → ${shown(after[f])}</div>`)}`;
}

export class AuditLog extends ConsoleElement {
  static override properties = {
    rows: { state: true },
    loaded: { state: true },
    error: { state: true },
    field: { state: true },
    value: { state: true },
  };
  declare rows: { id: string; entry: AuditRow; fresh: boolean }[];
  /** The listener's first snapshot arrived: entries from now on are new. */
  declare loaded: boolean;
  declare error: string | null;
  declare field: FilterField;
  declare value: string;
  private stop = (): void => {};

  constructor() {
    super();
    this.rows = [];
    this.loaded = false;
    this.error = null;
    this.field = "actorUid";
    this.value = "";
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.listen();
  }

  override disconnectedCallback(): void {
    this.stop();
    super.disconnectedCallback();
  }

  /** (Re)start the listener on the current filter. */
  private listen(): void {
    this.stop();
    this.rows = [];
    this.loaded = false;
    this.error = null;
    const filter: QueryConstraint[] = this.value ? [where(this.field, "==", this.value)] : [];
    const newest = query(
      collectionOf<AuditEntry>("auditLog"),
      ...filter,
      orderBy("at", "desc"),
      limit(SHOWN),
    );
    this.stop = onSnapshot(
      newest,
      (snapshot) => {
        const added = new Set(
          this.loaded
            ? snapshot.docChanges().filter((c) => c.type === "added").map((c) => c.doc.id)
            : [],
        );
        const before = new Map(this.rows.map((r) => [r.id, r.fresh]));
        this.rows = snapshot.docs.map((d) => ({
          id: d.id,
          entry: d.data(),
          fresh: added.has(d.id) || (before.get(d.id) ?? false),
        }));
        // A snapshot from the local cache may come before the server's: entries count as
        // new only once the server has answered.
        if (!snapshot.metadata.fromCache) this.loaded = true;
      },
      (err) => {
        this.error = describeError(err);
      },
    );
  }

  private apply(event: SubmitEvent): void {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    this.field = String(form.get("field")) as FilterField;
    this.value = String(form.get("value") ?? "").trim();
    this.listen();
  }

  override render(): TemplateResult {
    return html`
      <section class="page" data-testid="audit" ?data-loaded=${this.loaded}>
        <header class="page-head">
          <h2>Audit log</h2>
          <span class="muted live">● live · newest ${SHOWN}</span>
        </header>
        <form class="filter" @submit=${(e: SubmitEvent) => this.apply(e)}>
          <select name="field" aria-label="Filter by">
            ${Object.entries(FILTERS).map(
              ([name, label]) => html`<option value=${name} ?selected=${name === this.field}>${label}</option>`,
            )}
          </select>
          <input name="value" .value=${this.value} placeholder="exact value, e.g. listing.approved">
          <button type="submit">Filter</button>
        </form>
        ${errorLine(this.error)}
        ${this.loaded && this.rows.length === 0 ? html`<p class="muted">No entries.</p>` : nothing}
        ${auditTable(this.rows.map((r) => auditRow(r.id, r.entry, r.fresh)))}
      </section>`;
  }
}
