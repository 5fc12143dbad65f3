// Listings and alerts: a buyer saves a search; an agent writes a draft with the contract's
// types and submits it; an admin approves it; the buyer's live inbox listener gets the
// match, the agent hears the decision, and nobody else is told.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { type CollectionReference, getDoc, getDocs } from "firebase/firestore";

import { call, type Listing, type Notification, type PhotoSize } from "../../contract/index.js";
import { addPhoto, createListing, draft, saveLondonSearch, submit } from "./homes.js";
import {
  cast,
  closeAll,
  collectionOf,
  docOf,
  type Person,
  waitForDoc,
  waitForQuery,
} from "./support.js";

let admin: Person, agent: Person, buyer: Person;
before(async () => ({ admin, agent, buyer } = await cast()));
after(closeAll);

function inbox(person: Person): CollectionReference<Notification> {
  return collectionOf<Notification>(person.db, "users", person.uid, "notifications");
}

test("a submitted, approved listing reaches a matching buyer's live inbox", async () => {
  const search = await saveLondonSearch(buyer);
  // The alert index takes the search in first (a function records its audience).
  const indexed = await waitForDoc(search, (s) => Boolean(s.data()?.audience), "its audience");
  assert.equal(indexed.data()?.audience, "sale|GBP|city:london");

  const home = await createListing(agent, draft(agent));
  const stored = (await getDoc(home)).data();
  assert.equal(stored?.status, "draft");
  assert.equal(stored?.ownerId, agent.uid);
  // A draft is the agent's alone: the buyer cannot read it.
  const buyersView = docOf<Listing>(buyer.db, "listings", home.id);
  await assert.rejects(getDoc(buyersView), { code: "permission-denied" });

  const told = waitForQuery(
    inbox(buyer),
    (s) => s.docs.some((d) => d.data().listingId === home.id),
    "the buyer's alert",
  );
  // The review wants a photo: uploaded through a signed URL, processed by a function.
  const photo = await addPhoto(agent, home);
  assert.deepEqual(
    photo.sizes.map((size: PhotoSize) => size.width),
    [96],
  );
  await submit(home);
  // This agent is neither verified nor on the plan: the listing waits for an admin.
  const approved = await call(admin.functions, "approve_listing", { listingId: home.id });
  assert.deepEqual(approved, {
    listingId: home.id,
    status: "active",
    previousStatus: "pending_review",
  });

  const alerts = await told;
  const alert = alerts.docs.find((d) => d.data().listingId === home.id)!;
  assert.equal(alert.id, `new_listing-${home.id}`);
  assert.equal(alert.data().kind, "listing_match");
  assert.equal(alert.data().read, false);
  // Now public, the buyer reads it too, and its photo by URL.
  const seenByBuyer = (await getDoc(buyersView)).data();
  assert.equal(seenByBuyer?.status, "active");
  const shown = await fetch(seenByBuyer!.photos![0]!.sizes[0]!.webp);
  assert.equal(shown.headers.get("content-type"), "image/webp");
  // The agent hears the moderator's decision (inbox, push), and no alert about their own
  // listing.
  const decided = await waitForQuery(
    inbox(agent),
    (s) => s.docs.some((d) => d.data().kind === "listing_review"),
    "the agent's review notice",
  );
  const notice = decided.docs.find((d) => d.data().kind === "listing_review")!.data();
  assert.equal(notice.title, "Your listing is live");
  assert.equal(notice.listingId, home.id);
  const kinds = (await getDocs(inbox(agent))).docs.map((d) => d.data().kind);
  assert.deepEqual(kinds, ["listing_review"]);
});
