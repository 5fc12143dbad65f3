// Saved searches: saved with its hold, it enters the alert index (the function records its
// audience); muted, it leaves; deleted with its release, its slot is free again. A search
// written without its hold is refused.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  getDoc,
  serverTimestamp,
  setDoc,
  updateDoc,
  writeBatch,
} from "firebase/firestore";

import {
  releaseUsage,
  type SavedSearch,
  type SavedSearchUpdate,
  type Usage,
  usageRef,
} from "../../contract/index.js";
import { saveLondonSearch } from "./homes.js";
import { closeAll, docOf, type Person, signUp, unique, waitForDoc } from "./support.js";

let buyer: Person;

before(async () => {
  buyer = await signUp("buyer");
});
after(closeAll);

async function heldIds(): Promise<string[]> {
  const usage = (await getDoc(usageRef(buyer.db, buyer.uid))).data() as Usage | undefined;
  return usage?.savedSearches?.ids ?? [];
}

test("a saved search enters the alert index, leaves it muted, frees its slot deleted", async () => {
  const search = await saveLondonSearch(buyer);
  assert.deepEqual(await heldIds(), [search.id]);
  const indexed = await waitForDoc(search, (s) => Boolean(s.data()?.audience), "its audience");
  assert.equal(indexed.data()?.audience, "sale|GBP|city:london");

  const mute: SavedSearchUpdate = { muted: true, updatedAt: serverTimestamp() };
  await updateDoc(search, mute);
  await waitForDoc(search, (s) => (s.data()?.audience ?? null) === null, "no audience once muted");

  const batch = writeBatch(buyer.db);
  batch.delete(search);
  releaseUsage(batch, buyer.db, buyer.uid, "savedSearches", search.id);
  await batch.commit();
  // (Not a get of the search: with no document, the rules cannot show it is the caller's.)
  assert.deepEqual(await heldIds(), []);
});

test("a search saved without its hold in the same batch is refused", async () => {
  const ref = docOf<SavedSearch>(buyer.db, "savedSearches", unique("unheld"));

  await assert.rejects(
    setDoc(ref, {
      ownerId: buyer.uid,
      name: "Anywhere",
      kind: "rent",
      currency: "GBP",
      channels: { inApp: true, push: false, email: false },
      createdAt: serverTimestamp(),
      updatedAt: serverTimestamp(),
    }),
    { code: "permission-denied" },
  );
});
