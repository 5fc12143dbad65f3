// The console's frame: sign-in, the admin check, the navigation between pages.
//
// Only an account whose ID token carries role "admin" gets past the frame; anyone else
// sees a refusal and no page is even created, so nothing is read. The rules would refuse
// them every read anyway (listings under review, reports, the audit log, metrics are
// admins' only): the frame's check spares them the errors, it is not the protection.
import { type User, onAuthStateChanged, signInWithEmailAndPassword, signOut } from "firebase/auth";
import { html, type TemplateResult } from "lit";

import { describeError } from "./errors.js";
import { auth, stack } from "./firebase.js";
import { ConsoleElement, errorLine } from "./ui.js";

const PAGES = {
  queue: { title: "Moderation", render: () => html`<hf-queue></hf-queue>` },
  reports: { title: "Reports", render: () => html`<hf-reports></hf-reports>` },
  users: { title: "Users", render: () => html`<hf-users></hf-users>` },
  audit: { title: "Audit log", render: () => html`<hf-audit></hf-audit>` },
  health: { title: "Health", render: () => html`<hf-health></hf-health>` },
  metrics: { title: "Metrics", render: () => html`<hf-metrics></hf-metrics>` },
} satisfies Record<string, { title: string; render: () => TemplateResult }>;
type PageName = keyof typeof PAGES;

function pageOf(hash: string): PageName {
  const name = hash.replace(/^#\/?/, "");
  return name in PAGES ? (name as PageName) : "queue";
}

type Session =
  | { state: "loading" }
  | { state: "signed-out" }
  | { state: "refused"; user: User; role: string | null }
  | { state: "admin"; user: User };

export class ConsoleApp extends ConsoleElement {
  static override properties = {
    session: { state: true },
    page: { state: true },
    error: { state: true },
    busy: { state: true },
  };
  declare session: Session;
  declare page: PageName;
  declare error: string | null;
  declare busy: boolean;
  private stopListening = (): void => {};
  private readonly onHash = (): void => {
    this.page = pageOf(window.location.hash);
  };

  constructor() {
    super();
    this.session = { state: "loading" };
    this.page = pageOf(window.location.hash);
    this.error = null;
    this.busy = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("hashchange", this.onHash);
    this.stopListening = onAuthStateChanged(auth, (user) => void this.admit(user));
  }

  override disconnectedCallback(): void {
    window.removeEventListener("hashchange", this.onHash);
    this.stopListening();
    super.disconnectedCallback();
  }

  private async admit(user: User | null): Promise<void> {
    if (!user) {
      this.session = { state: "signed-out" };
      return;
    }
    let role: unknown;
    try {
      // A fresh token: a role changed since the last sign-in counts now, not in an hour.
      role = (await user.getIdTokenResult(true)).claims["role"];
    } catch (err) {
      this.error = describeError(err);
      this.session = { state: "signed-out" };
      return;
    }
    this.session =
      role === "admin"
        ? { state: "admin", user }
        : { state: "refused", user, role: typeof role === "string" ? role : null };
  }

  private async signIn(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    this.busy = true;
    this.error = null;
    try {
      await signInWithEmailAndPassword(auth, String(form.get("email")), String(form.get("password")));
    } catch (err) {
      this.error = describeError(err);
    } finally {
      this.busy = false;
    }
  }

  override render(): TemplateResult {
    const session = this.session;
    switch (session.state) {
      case "loading":
        return html`<p class="muted">Loading…</p>`;
      case "signed-out":
        return this.signInForm();
      case "refused":
        return html`
          <header class="bar"><h1>Homefront console</h1>${this.account(session.user)}</header>
          <main>
            <section class="refusal" role="alert" data-testid="refusal">
              <h2>Admins only</h2>
              <p>${session.user.email} is signed in as ${session.role ?? "a user without a role"},
                not as an admin. The console shows nothing to other accounts, and the database
                gives them none of its data.</p>
            </section>
          </main>`;
      case "admin":
        return html`
          <header class="bar">
            <h1>Homefront console</h1>
            <nav>
              ${Object.entries(PAGES).map(
                ([name, { title }]) => html`<a href="#/${name}" data-page=${name}
                  aria-current=${name === this.page ? "page" : "false"}>${title}</a>`,
              )}
            </nav>
            ${this.account(session.user)}
          </header>
          <main>${PAGES[this.page].render()}</main>`;
    }
  }

  private signInForm(): TemplateResult {
    return html`
      <main class="sign-in">
        <h1>Homefront console</h1>
        <p class="muted">For admins. Project ${stack.project} on the emulators
          (port offset ${stack.offset}).</p>
        <form @submit=${(e: SubmitEvent) => void this.signIn(e)}>
          <label>Email <input name="email" type="email" autocomplete="username" required></label>
          <label>Password <input name="password" type="password" autocomplete="current-password"
            required></label>
          <button type="submit" ?disabled=${this.busy}>Sign in</button>
        </form>
        ${errorLine(this.error)}
      </main>`;
  }

  private account(user: User): TemplateResult {
    return html`<span class="account">${user.email}
      <button class="link" @click=${() => void signOut(auth)}>Sign out</button></span>`;
  }
}
