// Compiled by test_contract.py with `tsc --noEmit`: the valid writes must type-check and
// every line under `@ts-expect-error` must be an error, or tsc fails ("unused directive").
// So the generated types refuse what the rules refuse, before an app ever runs.
import { deleteField, serverTimestamp } from "firebase/firestore";
import type { Functions } from "firebase/functions";

import {
  call,
  conversationId,
  type ConversationUpdate,
  type ListingCreate,
  type ListingStatusMoves,
  type ListingUpdate,
  type MessageCreate,
  type RequestOf,
} from "../../contract/index.js";

const draft: ListingCreate = {
  ownerId: "uid-1",
  status: "draft",
  kind: "sale",
  propertyType: "flat",
  title: "Two-bed flat by the canal",
  price: { amount: 42_500_000, currency: "GBP" },
  bedrooms: 2,
  bathrooms: 1,
  address: { line1: "12 Wharf Road", city: "London", postcode: "N1 7GR", country: "GB" },
  location: { lat: 51.53, lng: -0.09 },
  createdAt: serverTimestamp(),
  updatedAt: serverTimestamp(),
};

// @ts-expect-error an unknown field
const unknownField: ListingCreate = { ...draft, featuredUntil: null };

// @ts-expect-error createdAt must be serverTimestamp(), not the client's clock
const clientClock: ListingCreate = { ...draft, createdAt: new Date() };

const { createdAt: _dropped, ...withoutCreatedAt } = draft;
// @ts-expect-error a required serverTimestamp() left out
const missingTime: ListingCreate = withoutCreatedAt;

// @ts-expect-error a listing is created as a draft only
const createdLive: ListingCreate = { ...draft, status: "active" };

// @ts-expect-error money is minor units in an ISO currency we trade in
const badCurrency: ListingCreate = { ...draft, price: { amount: 1, currency: "XYZ" } };

const submit: ListingUpdate = { status: "pending_review", updatedAt: serverTimestamp() };
// @ts-expect-error every update must stamp updatedAt
const unstamped: ListingUpdate = { title: "A new title" };
// @ts-expect-error ownerId is fixed once created
const newOwner: ListingUpdate = { ownerId: "uid-2", updatedAt: serverTimestamp() };
// @ts-expect-error going live is a function's move
const goLive: ListingUpdate = { status: "active", updatedAt: serverTimestamp() };

const fromDraft: ListingStatusMoves["draft"] = "pending_review";
// @ts-expect-error draft cannot move straight to rejected
const skipReview: ListingStatusMoves["draft"] = "rejected";

const message: MessageCreate = { senderId: "uid-1", text: "Hello", createdAt: serverTimestamp() };
const chat: string = conversationId("listing-1", "uid-1");

// A participant's read receipt and block: its own entry, by field path, as the app sends it.
const me: string = "uid-1";
const markRead: ConversationUpdate = { [`lastReadAt.${me}`]: serverTimestamp() };
const block: ConversationUpdate = { [`blockedBy.${me}`]: serverTimestamp() };
const unblock: ConversationUpdate = { [`blockedBy.${me}`]: deleteField() };
// @ts-expect-error unread counts are the functions'
const clearUnread: ConversationUpdate = { unread: { [me]: 0 } };
// @ts-expect-error the last-message preview is the functions'
const fakePreview: ConversationUpdate = { lastMessage: null };
// @ts-expect-error updatedAt moves with the newest message, by a function
const bump: ConversationUpdate = { updatedAt: serverTimestamp() };
// @ts-expect-error a read receipt is serverTimestamp(), not the client's clock
const clockRead: ConversationUpdate = { [`lastReadAt.${me}`]: new Date() };

const search: RequestOf<"search_near"> = { lat: 51.5, lng: -0.1, radiusKm: 2 };
// @ts-expect-error radiusKm is required
const noRadius: RequestOf<"search_near"> = { lat: 51.5, lng: -0.1 };

export async function calls(functions: Functions): Promise<number> {
  const page = await call(functions, "search_near", search);
  // @ts-expect-error the response has no such field
  page.total;
  // @ts-expect-error the request names the listing and the days, never an amount
  await call(functions, "feature_listing", { listingId: "x", days: 3, amount: 1 });
  return page.results.length;
}

export const used = [
  unknownField, clientClock, missingTime, createdLive, badCurrency, submit, unstamped,
  newOwner, goLive, fromDraft, skipReview, message, chat, noRadius, markRead, block, unblock,
  clearUnread, fakePreview, bump, clockRead,
];
