// A work queue (listings to review, reports to handle): the oldest first, a page at a
// time (paging.ts), each item with actions whose result is read back from the database.
import { type DocumentData, getDoc, orderBy, query, where } from "firebase/firestore";
import { html, nothing, type TemplateResult } from "lit";

import { describeError } from "./errors.js";
import { collectionOf, docOf } from "./firebase.js";
import { CursorPager, type Page } from "./paging.js";
import { ConsoleElement, errorLine } from "./ui.js";

const PAGE_SIZE = 10;

/** Where one item of the page stands after an action on it. */
export interface Outcome {
  /** The item's status as stored after the action (read back, not the call's answer). */
  status?: string;
  error?: string;
  busy?: boolean;
  /** The action whose form (a reason to give) is open. */
  asking?: string;
}

/** An action on an item: a button. */
export interface Action {
  name: string;
  label: string;
  run: () => Promise<unknown>;
}

/** An action that needs a reason: a button, then a form asking ``prompt``. */
export interface ReasonedAction {
  name: string;
  label: string;
  prompt: string;
  run: (reason: string) => Promise<unknown>;
}

export abstract class QueuePage<T extends DocumentData & { status?: string }> extends ConsoleElement {
  static override properties = {
    current: { state: true },
    total: { state: true },
    error: { state: true },
    outcomes: { state: true },
  };
  declare current: Page<T> | null;
  declare total: number | null;
  declare error: string | null;
  declare outcomes: Record<string, Outcome>;
  private pager: CursorPager<T> | null = null;

  /** The collection the items live in (their status is read back from there). */
  protected abstract readonly collectionPath: string;
  /** The status of an item waiting for an admin. */
  protected abstract readonly waiting: string;
  protected abstract readonly heading: string;
  protected abstract readonly noun: string;
  /** One item, as a card. */
  protected abstract card(id: string, item: T, outcome: Outcome): TemplateResult;

  constructor() {
    super();
    this.current = null;
    this.total = null;
    this.error = null;
    this.outcomes = {};
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.restart();
  }

  /** Page ``index`` and the queue's length (both again: the queue moves). */
  private async show(index: number): Promise<void> {
    this.error = null;
    try {
      this.pager ??= new CursorPager(this.ordered(), PAGE_SIZE);
      const [page, total] = await Promise.all([this.pager.page(index), this.pager.total()]);
      this.current = page;
      this.total = total;
      this.outcomes = {};
    } catch (err) {
      this.error = describeError(err);
    }
  }

  private restart(): void {
    this.pager = null;
    void this.show(0);
  }

  protected note(id: string, outcome: Outcome): void {
    this.outcomes = { ...this.outcomes, [id]: outcome };
  }

  /** Run ``action`` on item ``id``, then read the item back for its stored status; if
   * refused, the refusal and the status as stored (someone else may have acted first). */
  private async act(id: string, action: () => Promise<unknown>): Promise<void> {
    this.note(id, { busy: true });
    try {
      await action();
      this.note(id, { status: await this.storedStatus(id) });
    } catch (err) {
      const error = describeError(err);
      this.note(id, { error, status: await this.storedStatus(id).catch(() => undefined) });
    }
  }

  private async storedStatus(id: string): Promise<string> {
    const stored = await getDoc(docOf<T>(this.collectionPath, id));
    return stored.data()?.status ?? "deleted";
  }

  /** The items waiting, oldest first (queries.MODERATION_QUEUE, queries.OPEN_REPORTS). */
  private ordered() {
    return query(
      collectionOf<T>(this.collectionPath),
      where("status", "==", this.waiting),
      orderBy("createdAt", "asc"),
    );
  }

  /** An item's two actions: ``now`` at a click, ``asking`` once given a reason. */
  protected actions(id: string, outcome: Outcome, now: Action, asking: ReasonedAction): TemplateResult {
    if (outcome.asking === asking.name) {
      const send = (event: SubmitEvent): void => {
        event.preventDefault();
        const reason = String(new FormData(event.target as HTMLFormElement).get("reason") ?? "");
        void this.act(id, () => asking.run(reason));
      };
      return html`
        <form class="actions" @submit=${send}>
          <label>${asking.prompt}
            <textarea name="reason" rows="2" maxlength="500" required></textarea></label>
          <button type="submit" data-action="confirm-${asking.name}" ?disabled=${outcome.busy}>
            ${asking.label}</button>
          <button type="button" class="link" @click=${() => this.note(id, {})}>Cancel</button>
        </form>`;
    }
    return html`
      <div class="actions">
        <button data-action=${now.name} ?disabled=${outcome.busy}
          @click=${() => void this.act(id, now.run)}>${now.label}</button>
        <button data-action=${asking.name} ?disabled=${outcome.busy}
          @click=${() => this.note(id, { asking: asking.name })}>${asking.label}…</button>
      </div>`;
  }

  override render(): TemplateResult {
    const page = this.current;
    return html`
      <section class="page" data-testid=${this.localName.replace(/^hf-/, "")}>
        <header class="page-head">
          <h2>${this.heading}</h2>
          <span class="muted" data-testid="total">${this.summary()}</span>
          <button class="link" @click=${() => this.restart()}>Refresh</button>
        </header>
        ${errorLine(this.error)}
        ${page && page.docs.length === 0 ? html`<p class="muted">No ${this.noun} waiting.</p>` : nothing}
        <ol class="cards">
          ${page?.docs.map((d) => this.card(d.id, d.data(), this.outcomes[d.id] ?? {}))}
        </ol>
        ${page ? this.pagination(page) : nothing}
      </section>`;
  }

  private summary(): string {
    const page = this.current;
    if (!page || this.total === null) return "Loading…";
    if (page.docs.length === 0) return `${this.total} waiting`;
    const first = page.index * PAGE_SIZE + 1;
    return `${first}–${first + page.docs.length - 1} of ${this.total} waiting, oldest first`;
  }

  private pagination(page: Page<T>): TemplateResult {
    return html`
      <footer class="pager">
        <button data-testid="previous" ?disabled=${page.index === 0}
          @click=${() => void this.show(page.index - 1)}>← Previous</button>
        <span data-testid="page-number">Page ${page.index + 1}</span>
        <button data-testid="next" ?disabled=${!page.hasNext}
          @click=${() => void this.show(page.index + 1)}>Next →</button>
        <span class="muted" data-testid="reads" data-read=${page.read}>This page read
          ${page.read} document${page.read === 1 ? "" : "s"} (at most ${PAGE_SIZE + 1})
          and counted the rest.</span>
      </footer>`;
  }
}
