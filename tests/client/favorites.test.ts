// Favourites: a buyer saves a public listing (the favourite and its hold in one batch);
// the listing's count follows at the next roll-up; unsaving takes it back. Only public
// listings can be saved.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { doc, type DocumentReference, serverTimestamp, writeBatch } from "firebase/firestore";

import {
  type FavoriteCreate,
  holdUsage,
  type Listing,
  releaseUsage,
} from "../../contract/index.js";
import { createListing, draft, publicListing } from "./homes.js";
import { cast, closeAll, docOf, type Person, runSchedule, waitForDoc } from "./support.js";

let admin: Person, agent: Person, buyer: Person;
before(async () => ({ admin, agent, buyer } = await cast()));
after(closeAll);

function favourite(listingId: string): Promise<void> {
  const batch = writeBatch(buyer.db);
  const saved: FavoriteCreate = { listingId, createdAt: serverTimestamp() };
  batch.set(doc(buyer.db, "users", buyer.uid, "favorites", listingId), saved);
  holdUsage(batch, buyer.db, buyer.uid, "favorites", listingId);
  return batch.commit();
}

function unfavourite(listingId: string): Promise<void> {
  const batch = writeBatch(buyer.db);
  batch.delete(doc(buyer.db, "users", buyer.uid, "favorites", listingId));
  releaseUsage(batch, buyer.db, buyer.uid, "favorites", listingId);
  return batch.commit();
}

/** The count as the buyer's listener sees it, once the roll-up (every minute when
 * deployed; run here by the test, as often as needed) has caught up with ``expected``. */
async function countReaches(listing: DocumentReference<Listing, Listing>, expected: number) {
  const buyersView = docOf<Listing>(buyer.db, "listings", listing.id);
  const seen = waitForDoc(
    buyersView,
    (s) => (s.data()?.favoritesCount ?? 0) === expected,
    `favoritesCount ${expected}`,
    45,
  );
  let settled = false;
  void seen.finally(() => (settled = true)).catch(() => undefined);
  // The favourite's trigger marks the listing about a second after the write; the
  // roll-up counts what is marked, so run it until the count shows.
  while (!settled) {
    await runSchedule("roll_up_favorites");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return seen;
}

test("a favourite of a public listing is counted, and unsaving it uncounts it", async () => {
  const home = await publicListing(agent, admin);

  await favourite(home.id);

  assert.equal((await countReaches(home, 1)).data()?.favoritesCount, 1);
  await unfavourite(home.id);
  assert.equal((await countReaches(home, 0)).data()?.favoritesCount, 0);
});

test("a draft cannot be saved: the rules refuse the whole batch", async () => {
  const hidden = await createListing(agent, draft(agent));

  await assert.rejects(favourite(hidden.id), { code: "permission-denied" });
});
