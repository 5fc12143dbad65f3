// What the apps write, as the journeys share it: an agent's listing (a draft counted
// against the daily cap in the same batch, submitted for review, and for journeys that
// need a public home, approved by an admin through approve_listing) and a buyer's saved
// search (held against its cap in the same batch).
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { type DocumentReference, serverTimestamp, updateDoc, writeBatch } from "firebase/firestore";

import {
  call,
  holdUsage,
  type Listing,
  type ListingCreate,
  type ListingUpdate,
  type Photo,
  type SavedSearch,
  type SavedSearchCreate,
} from "../../contract/index.js";
import { countCreate, docOf, type Person, unique, waitForDoc } from "./support.js";

/** A London home for sale that passes review: the fields an agent's form fills in. */
export function draft(agent: Person, overrides: Partial<ListingCreate> = {}): ListingCreate {
  return {
    ownerId: agent.uid,
    status: "draft",
    kind: "sale",
    propertyType: "flat",
    title: "Bright two-bedroom flat by the park",
    description: "Second floor, south facing.",
    price: { amount: 450_000_00, currency: "GBP" },
    bedrooms: 2,
    bathrooms: 1,
    // Review refuses a second live listing at the same address: each draft has its own.
    address: {
      line1: `${unique("Flat")} Park Road`,
      city: "London",
      postcode: "SW1A 1AA",
      country: "GB",
    },
    location: { lat: 51.5014, lng: -0.1419 },
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
    ...overrides,
  };
}

/** Create ``data`` as a new listing: the document and its count in the agent's daily
 * window, in one batch (the rules refuse a listing the usage does not count). */
export async function createListing(
  agent: Person,
  data: ListingCreate,
): Promise<DocumentReference<Listing, Listing>> {
  const id = unique("home");
  const ref = docOf<Listing>(agent.db, "listings", id);
  const batch = writeBatch(agent.db);
  batch.set(ref, data);
  await countCreate(batch, agent, "listings", id);
  await batch.commit();
  return ref;
}

/** A small photo as a phone would upload it (a 96x64 JPEG of a house; the quickstart's
 * too). Compiled, this file runs from tests/client/build/tests/client/. */
export const PHOTO = readFileSync(join(__dirname, "..", "..", "..", "..", "..", "examples", "house.jpg"));

/** Upload a photo of ``ref`` as an app does: ask for a slot, ``PUT`` the bytes to its signed
 * URL with exactly its headers, then watch the listing until the processed photo is on it. */
export async function addPhoto(
  agent: Person,
  ref: DocumentReference<Listing, Listing>,
  bytes: Uint8Array = PHOTO,
): Promise<Photo> {
  const slot = await call(agent.functions, "request_photo_upload", {
    target: "listing",
    listingId: ref.id,
    contentType: "image/jpeg",
  });
  const sent = await fetch(slot.url, { method: slot.method, headers: slot.headers, body: bytes });
  if (!sent.ok) throw new Error(`the upload answered ${sent.status}`);
  const photoOf = (listing: Listing | undefined) =>
    (listing?.photos ?? []).find((p) => p.id === slot.photoId);
  const snap = await waitForDoc(ref, (s) => Boolean(photoOf(s.data())), "its processed photo", 30);
  const photo = photoOf(snap.data());
  if (!photo) throw new Error("the photo vanished");
  return photo;
}

/** Submit a draft for review (draft -> pending_review; every update stamps updatedAt). */
export async function submit(ref: DocumentReference<Listing, Listing>): Promise<void> {
  const submission: ListingUpdate = { status: "pending_review", updatedAt: serverTimestamp() };
  await updateDoc(ref, submission);
}

/** A public (active) listing of ``agent``'s: drafted, submitted, approved by ``admin``. */
export async function publicListing(
  agent: Person,
  admin: Person,
  overrides: Partial<ListingCreate> = {},
): Promise<DocumentReference<Listing, Listing>> {
  const ref = await createListing(agent, draft(agent, overrides));
  await addPhoto(agent, ref); // the review requires one
  await submit(ref);
  await call(admin.functions, "approve_listing", { listingId: ref.id });
  await waitForDoc(ref, (s) => s.data()?.status === "active", "the approved listing", 10);
  return ref;
}

/** Save a search for homes for sale in London, with its hold, in one batch. */
export async function saveLondonSearch(
  person: Person,
  overrides: Partial<SavedSearchCreate> = {},
): Promise<DocumentReference<SavedSearch, SavedSearch>> {
  const ref = docOf<SavedSearch>(person.db, "savedSearches", unique("london"));
  const search: SavedSearchCreate = {
    ownerId: person.uid,
    name: "London flats",
    kind: "sale",
    city: "London",
    currency: "GBP",
    priceMax: 600_000_00,
    channels: { inApp: true, push: false, email: false },
    muted: false,
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
    ...overrides,
  };
  const batch = writeBatch(person.db);
  batch.set(ref, search);
  holdUsage(batch, person.db, person.uid, "savedSearches", ref.id);
  await batch.commit();
  return ref;
}
