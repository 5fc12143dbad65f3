// The moderation queue: listings waiting for review, with their photos and the checks the
// review trigger ran; approve, or reject with a reason the agent will read.
import { html, nothing, type TemplateResult } from "lit";

import { call, type Listing } from "../../../contract/index.js";
import { functions } from "../firebase.js";
import { ago, errorLine, money } from "../ui.js";
import { type Outcome, QueuePage } from "../workqueue.js";

export class ModerationQueue extends QueuePage<Listing> {
  protected readonly collectionPath = "listings";
  protected readonly waiting = "pending_review";
  protected readonly heading = "Moderation queue";
  protected readonly noun = "listings";

  protected card(id: string, listing: Listing, outcome: Outcome): TemplateResult {
    const status = outcome.status ?? listing.status;
    const photos = listing.photos ?? [];
    return html`
      <li class="card" data-id=${id}>
        <div class="photos">
          ${photos.slice(0, 4).map(
            (photo) => html`<img src=${photo.sizes[0]?.jpeg ?? ""} alt="" loading="lazy">`,
          )}
          ${photos.length === 0 ? html`<span class="muted">No photos</span>` : nothing}
        </div>
        <div class="body">
          <h3>${listing.title}</h3>
          <p>${money(listing.price.amount, listing.price.currency)} · for ${listing.kind} ·
            ${listing.propertyType} · ${listing.bedrooms} bed · ${listing.address.city}
            ${listing.address.postcode}</p>
          <p class="muted">Agent ${listing.ownerId} · listed ${ago(listing.createdAt)} · ${id}</p>
          ${this.checks(listing)}
          <p>Status <span class="status" data-status=${status}>${status}</span></p>
          ${errorLine(outcome.error ?? null)}
          ${status === this.waiting ? this.listingActions(id, outcome) : nothing}
        </div>
      </li>`;
  }

  private checks(listing: Listing): TemplateResult {
    const checks = listing.reviewChecks ?? [];
    if (checks.length === 0) return html`<p class="muted">No review checks recorded yet.</p>`;
    return html`<ul class="checks">${checks.map(
      (c) => html`<li class=${c.passed ? "pass" : "fail"}>${c.passed ? "✓" : "✗"} ${c.check}${
        c.detail ? html` <span class="muted">${c.detail}</span>` : nothing
      }</li>`,
    )}</ul>`;
  }

  private listingActions(id: string, outcome: Outcome): TemplateResult {
    return this.actions(
      id,
      outcome,
      {
        name: "approve",
        label: "Approve",
        run: () => call(functions, "approve_listing", { listingId: id }),
      },
      {
        name: "reject",
        label: "Reject",
        prompt: "Reason the agent will read",
        run: (reason) => call(functions, "reject_listing", { listingId: id, reason }),
      },
    );
  }
}
