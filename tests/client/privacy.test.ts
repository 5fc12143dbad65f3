// Leaving and taking your data, as an app does it: a member with a favourite and a saved
// search exports their data (the inbox entry brings a link to a zip that names its files;
// a second export the same day is refused), then deletes their account right after
// signing in. Their ID token, still valid, can no longer read their private account,
// write their profile or call anything; the erasure, run by the Cloud Tasks worker,
// finishes and the address no longer signs in; the agent and their listing are as they
// were. Deleting unconfirmed ({confirm: false}) is invalid. (A sign-in over 5 minutes old,
// reauth_required, cannot be made here: tests/privacy/test_closing.py covers it.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { inflateRawSync } from "node:zlib";

import { signInWithEmailAndPassword } from "firebase/auth";
import { doc, getDoc, serverTimestamp, updateDoc, writeBatch } from "firebase/firestore";

import {
  call,
  type FavoriteCreate,
  holdUsage,
  type Listing,
  type Notification,
  type PrivateAccount,
  type Profile,
  type ProfileUpdate,
} from "../../contract/index.js";
import { publicListing, saveLondonSearch } from "./homes.js";
import {
  cast,
  client,
  closeAll,
  collectionOf,
  docOf,
  emulators,
  PASSWORD,
  type Person,
  refused,
  signUp,
  waitForQuery,
} from "./support.js";

let agent: Person, member: Person;
let listingId: string;

before(async () => {
  let admin: Person;
  ({ admin, agent, buyer: member } = await cast());
  listingId = (await publicListing(agent, admin)).id;
});
after(closeAll);

/** A zip's entries by name, read from its central directory; each gives its bytes
 * (inflated if deflated). */
function zipEntries(zip: Buffer): Map<string, () => Buffer> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, "no end of central directory record");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map<string, () => Buffer>();
  for (let i = 0; i < count; i += 1) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50, `central directory entry ${i}`);
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const otherLengths = zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    entries.set(name, () => {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 8 ? inflateRawSync(data) : data;
    });
    at += 46 + nameLength + otherLengths;
  }
  return entries;
}

test("an export: the inbox brings a link to a zip of the member's data, once a day", async () => {
  const batch = writeBatch(member.db);
  const saved: FavoriteCreate = { listingId, createdAt: serverTimestamp() };
  batch.set(doc(member.db, "users", member.uid, "favorites", listingId), saved);
  holdUsage(batch, member.db, member.uid, "favorites", listingId);
  await batch.commit();
  const search = await saveLondonSearch(member);

  const { exportId } = await call(member.functions, "export_my_data", {});
  const inbox = collectionOf<Notification>(member.db, "users", member.uid, "notifications");
  const id = `export-${exportId}`;
  const seen = await waitForQuery(inbox, (s) => s.docs.some((d) => d.id === id), "the link");
  const told = seen.docs.find((d) => d.id === id)!.data();
  assert.equal(told.kind, "system");
  const url = told.data?.["url"];
  assert.equal(typeof url, "string");

  const response = await fetch(url as string);
  assert.equal(response.status, 200, `the download answered ${response.status}`);
  const zip = Buffer.from(await response.arrayBuffer());
  assert.ok(zip.length > 0 && zip.subarray(0, 4).equals(Buffer.from("PK\x03\x04")), "not a zip");
  const entries = zipEntries(zip);
  for (const name of [
    "manifest.json",
    "README.txt",
    "auth/user.json",
    `firestore/users__${member.uid}__favorites.json`,
    "firestore/savedSearches.json",
  ]) {
    assert.ok(entries.has(name), `the archive has no ${name}: ${[...entries.keys()].join(", ")}`);
  }
  const read = <T>(name: string) => JSON.parse(entries.get(name)!().toString()) as T;
  const manifest = read<Record<string, unknown>>("manifest.json");
  assert.deepEqual([manifest["exportId"], manifest["uid"]], [exportId, member.uid]);
  type Records = { path: string; data: Record<string, unknown> }[];
  const favourites = read<Records>(`firestore/users__${member.uid}__favorites.json`);
  assert.deepEqual(favourites.map((f) => f.data["listingId"]), [listingId]);
  const searches = read<Records>("firestore/savedSearches.json");
  assert.deepEqual(searches.map((s) => s.path), [search.path]);

  await refused(member, "export_my_data", {}, {
    code: "resource-exhausted",
    reason: "export_today",
  });
});

test("deleting must be confirmed: confirm false is invalid", async () => {
  const unsure = await signUp("unsure");

  await refused(unsure, "delete_my_account", { confirm: false } as never, {
    code: "invalid-argument",
    reason: "invalid_argument",
  });
});

/** ``_erasures/{id}`` as the server sees it (the Firestore emulator's REST API, the
 * ``owner`` bearer): its state, and the raw document for a failure's message. */
async function erasure(id: string): Promise<{ state: string | undefined; raw: string }> {
  const url =
    `http://${emulators.firestore}/v1/projects/${emulators.project}` +
    `/databases/(default)/documents/_erasures/${id}`;
  const response = await fetch(url, { headers: { Authorization: "Bearer owner" } });
  const raw = await response.text();
  if (!response.ok) return { state: undefined, raw };
  const fields = (JSON.parse(raw) as { fields?: { state?: { stringValue?: string } } }).fields;
  return { state: fields?.state?.stringValue, raw };
}

test("a deleted account is closed at once, then erased: it no longer signs in", async () => {
  // Deleting asks for a sign-in within 5 minutes: the app signs the member in again first.
  await signInWithEmailAndPassword(member.auth, member.email, PASSWORD);
  const started = await call(member.functions, "delete_my_account", { confirm: true });
  assert.equal(started.state, "running");

  // The ID token is still valid for up to an hour; the tombstone refuses it everywhere.
  const privately = docOf<PrivateAccount>(member.db, "users", member.uid, "private", "account");
  await assert.rejects(getDoc(privately), { code: "permission-denied" });
  const bio: ProfileUpdate = { bio: "Still here?" };
  await assert.rejects(updateDoc(docOf<Profile>(member.db, "users", member.uid), bio), {
    code: "permission-denied",
  });
  await refused(member, "export_my_data", {}, {
    code: "permission-denied",
    reason: "account_closed",
  });
  // Nor can the address sign in again: disabled at once (or, should the cascade be that
  // quick, gone already).
  const again = client();
  const signIn = () =>
    signInWithEmailAndPassword(again.auth, member.email, PASSWORD).then(
      () => assert.fail("the closed account signed in"),
      (err: unknown) => (err as { code?: string }).code,
    );
  const refusedAtOnce = await signIn();
  assert.ok(
    refusedAtOnce === "auth/user-disabled" || refusedAtOnce === "auth/user-not-found",
    `signing in to the closed account failed with ${refusedAtOnce}`,
  );

  // The Cloud Tasks worker runs the cascade; it is done when its report says so.
  const deadline = Date.now() + 90_000;
  let last = await erasure(started.erasureId);
  while (last.state !== "done") {
    if (Date.now() > deadline) assert.fail(`the erasure is not done after 90 s: ${last.raw}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    last = await erasure(started.erasureId);
  }

  assert.equal(await signIn(), "auth/user-not-found");

  // Gone for everyone else too; the agent and their listing are as they were.
  assert.equal((await getDoc(docOf<Profile>(agent.db, "users", member.uid))).exists(), false);
  const home = (await getDoc(docOf<Listing>(agent.db, "listings", listingId))).data();
  assert.equal(home?.status, "active");
  assert.equal(home?.ownerId, agent.uid);
  assert.equal((await getDoc(docOf<Profile>(agent.db, "users", agent.uid))).data()?.role, "agent");
});
