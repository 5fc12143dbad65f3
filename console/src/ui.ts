// What every page shares: light-DOM elements (one stylesheet, public/index.html, and
// plain selectors for the browser tests), and how dates, money and changes read.
import { html, LitElement, nothing, type TemplateResult } from "lit";
import type { Timestamp } from "firebase/firestore";

/** A page or widget of the console, rendered into the document itself (no shadow root). */
export class ConsoleElement extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }
}

/** An error line (``role=alert``), or nothing. */
export function errorLine(message: string | null): TemplateResult | typeof nothing {
  return message ? html`<p class="error" role="alert">${message}</p>` : nothing;
}

/** How long ago, coarsely ("3 days ago", "5 min ago"). */
export function ago(at: Timestamp | null | undefined, now = Date.now()): string {
  if (!at) return "—";
  const minutes = Math.max(0, Math.round((now - at.toMillis()) / 60_000));
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

/** An amount in minor units in its currency ("£350,000"). */
export function money(amount: number, currency: string): string {
  return new Intl.NumberFormat("en-GB", { style: "currency", currency, maximumFractionDigits: 0 })
    .format(amount / 100);
}

/** A value of an audit entry's change, compactly. */
export function shown(value: unknown): string {
  if (value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}
