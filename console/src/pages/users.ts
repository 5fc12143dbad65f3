// Users: find one by email (the lookup is itself audited: it reads personal data), see
// role, plan and the latest audit entries about them; change the role, disable or enable
// the account, or start its deletion. Each answer is the user looked up again.
import { html, nothing, type TemplateResult } from "lit";

import { call, type ResponseOf, type Role } from "../../../contract/index.js";
import { describeError } from "../errors.js";
import { functions } from "../firebase.js";
import { ConsoleElement, errorLine } from "../ui.js";
import { auditRow, auditTable } from "./audit.js";

type FoundUser = ResponseOf<"find_user">;
const ROLES: Role[] = ["buyer", "agent", "admin"];

export class UsersPage extends ConsoleElement {
  static override properties = {
    found: { state: true },
    error: { state: true },
    busy: { state: true },
    done: { state: true },
  };
  declare found: FoundUser | null;
  declare error: string | null;
  declare busy: boolean;
  /** What the last action did, in words. */
  declare done: string | null;

  constructor() {
    super();
    this.found = null;
    this.error = null;
    this.busy = false;
    this.done = null;
  }

  /** Run ``step`` (a lookup, or an action then the lookup again): show the user it
   * found and what the action did, or its error. */
  private async run(step: () => Promise<[FoundUser, string | null]>): Promise<void> {
    this.busy = true;
    this.error = null;
    this.done = null;
    try {
      [this.found, this.done] = await step();
    } catch (err) {
      this.error = describeError(err);
    } finally {
      this.busy = false;
    }
  }

  private find(email: string): Promise<FoundUser> {
    return call(functions, "find_user", { email });
  }

  private submit(event: SubmitEvent, act: (form: FormData) => Promise<string>): void {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const email = this.found?.email ?? "";
    void this.run(async () => {
      const done = await act(new FormData(form));
      form.reset(); // a reason given is spent; the next action asks again
      return [await this.find(email), done];
    });
  }

  override render(): TemplateResult {
    const search = (event: SubmitEvent): void => {
      event.preventDefault();
      const email = String(new FormData(event.target as HTMLFormElement).get("email") ?? "");
      void this.run(async () => [await this.find(email.trim()), null]);
    };
    return html`
      <section class="page" data-testid="users">
        <header class="page-head"><h2>Users</h2></header>
        <form class="filter" @submit=${search}>
          <input name="email" type="email" placeholder="email address" required
            aria-label="Email address">
          <button type="submit" ?disabled=${this.busy}>Find</button>
        </form>
        ${errorLine(this.error)}
        ${this.done ? html`<p class="done" role="status">${this.done}</p>` : nothing}
        ${this.found ? this.user(this.found) : nothing}
      </section>`;
  }

  private user(user: FoundUser): TemplateResult {
    return html`
      <article class="card user" data-uid=${user.uid}>
        <div class="body">
          <h3>${user.displayName || "(no name)"} <span class="muted">${user.email}</span></h3>
          <dl>
            <dt>uid</dt><dd>${user.uid}</dd>
            <dt>Role</dt><dd data-field="role">${user.role}</dd>
            <dt>Plan</dt><dd data-field="plan">${user.plan ?? "none"}</dd>
            <dt>Account</dt><dd data-field="account">${user.account}</dd>
          </dl>
          ${user.closed ? nothing : this.actions(user)}
          <h4>Latest audit entries about this user</h4>
          ${user.recentAudit.length === 0
            ? html`<p class="muted">None.</p>`
            : auditTable(user.recentAudit.map((entry) => auditRow(entry.id, entry)))}
        </div>
      </article>`;
  }

  private actions(user: FoundUser): TemplateResult {
    const setRole = async (form: FormData) => {
      const role = String(form.get("role")) as Role;
      await call(functions, "set_user_role", { uid: user.uid, role });
      return `Role set to ${role}.`;
    };
    const toggle = async (form: FormData) => {
      const reason = String(form.get("reason") ?? "");
      await call(functions, "disable_user", { uid: user.uid, disabled: !user.disabled, reason });
      return user.disabled ? "Account enabled." : "Account disabled; its sessions end now.";
    };
    const erase = async (form: FormData) => {
      const reason = String(form.get("reason") ?? "");
      const started = await call(functions, "erase_user", { uid: user.uid, reason });
      return `Deletion started (erasure ${started.erasureId}, ${started.state}).`;
    };
    return html`
      <div class="admin-actions">
        <form @submit=${(e: SubmitEvent) => this.submit(e, setRole)} data-action="role">
          <label>Role <select name="role">
            ${ROLES.map((r) => html`<option value=${r} ?selected=${r === user.role}>${r}</option>`)}
          </select></label>
          <button type="submit" ?disabled=${this.busy}>Change role</button>
        </form>
        <form @submit=${(e: SubmitEvent) => this.submit(e, toggle)} data-action="disable">
          <label>Reason <input name="reason" required maxlength="500"></label>
          <button type="submit" ?disabled=${this.busy}>${user.disabled ? "Enable" : "Disable"}
            account</button>
        </form>
        <form @submit=${(e: SubmitEvent) => this.submit(e, erase)} data-action="erase">
          <label>Reason <input name="reason" required maxlength="500"></label>
          <button type="submit" class="danger" ?disabled=${this.busy}>Start account
            deletion</button>
        </form>
      </div>`;
  }
}
