// Every callable through the SDK with the contract's types: its happy path, and one
// refusal with its code and details (the expected refusal is typed by the contract, so a
// refusal the contract does not declare fails the type check).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { getDoc } from "firebase/firestore";

import { call, type Profile } from "../../contract/index.js";
import { addPhoto, createListing, draft, publicListing, submit } from "./homes.js";
import {
  cast,
  closeAll,
  docOf,
  newAgent,
  type Person,
  refused,
  signUp,
  waitForDoc,
} from "./support.js";

let admin: Person, agent: Person, buyer: Person;
before(async () => ({ admin, agent, buyer } = await cast()));
after(closeAll);

test("search_near finds a public listing near a point, refuses a radius past 50 km", async () => {
  const home = await publicListing(agent, admin);

  const near = { lat: 51.5014, lng: -0.1419 };
  const page = await call(buyer.functions, "search_near", { ...near, radiusKm: 1 });
  const found = page.results.find((r) => r.id === home.id);
  assert.ok(found, `${home.id} is not among ${JSON.stringify(page.results)}`);
  assert.deepEqual(
    [found.title, found.price, found.kind],
    ["Bright two-bedroom flat by the park", { amount: 450_000_00, currency: "GBP" }, "sale"],
  );
  assert.ok(found.distanceKm < 0.01);

  const tooFar = await refused(
    buyer,
    "search_near",
    { ...near, radiusKm: 500 },
    { code: "invalid-argument", reason: "invalid_argument" },
  );
  assert.deepEqual(
    tooFar.fields.map((f) => [f.field, f.issue]),
    [["radiusKm", "less_than_equal"]],
  );
});

test("set_user_role makes a buyer an agent, and refuses an admin's own role", async () => {
  const newcomer = await signUp("newcomer");

  const promotion = { uid: newcomer.uid, role: "agent" } as const;
  const changed = await call(admin.functions, "set_user_role", promotion);
  assert.deepEqual(changed, { ...promotion, previousRole: "buyer", changed: true });
  // The profile is the record and the app's cue to refresh its token.
  const profile = docOf<Profile>(newcomer.db, "users", newcomer.uid);
  await waitForDoc(profile, (s) => s.data()?.role === "agent", "the profile's new role", 10);
  assert.equal((await newcomer.user.getIdTokenResult(true)).claims["role"], "agent");

  await refused(
    admin,
    "set_user_role",
    { uid: admin.uid, role: "buyer" },
    { code: "failed-precondition", reason: "own_role" },
  );
  await refused(
    buyer,
    "set_user_role",
    { uid: buyer.uid, role: "admin" },
    { code: "permission-denied", reason: "role" },
  );
});

test("approve_listing and reject_listing review submissions, not drafts", async () => {
  const approvedHome = await createListing(agent, draft(agent));
  const rejectedHome = await createListing(agent, draft(agent));
  await Promise.all([addPhoto(agent, approvedHome), addPhoto(agent, rejectedHome)]);
  await Promise.all([submit(approvedHome), submit(rejectedHome)]);

  const approval = { listingId: approvedHome.id };
  const approved = await call(admin.functions, "approve_listing", approval);
  assert.deepEqual(approved, { ...approval, status: "active", previousStatus: "pending_review" });
  const reason = "The photos are too dark to show the rooms.";
  const rejection = { listingId: rejectedHome.id, reason };
  const rejected = await call(admin.functions, "reject_listing", rejection);
  assert.deepEqual(rejected, {
    listingId: rejectedHome.id,
    status: "rejected",
    previousStatus: "pending_review",
  });
  // The agent reads why, on the listing itself.
  const seen = (await getDoc(rejectedHome)).data();
  assert.deepEqual([seen?.status, seen?.rejectionReason], ["rejected", reason]);

  const stillDraft = await createListing(agent, draft(agent));
  await refused(
    admin,
    "approve_listing",
    { listingId: stillDraft.id },
    { code: "failed-precondition", reason: "transition_not_allowed" },
  );
  await refused(
    admin,
    "reject_listing",
    { listingId: "no-such-home", reason },
    { code: "not-found", reason: "no_such_listing" },
  );
});

test("set_listing_status refuses to let a home for sale, and puts it under offer", async () => {
  const home = await publicListing(agent, admin);

  await refused(
    agent,
    "set_listing_status",
    { listingId: home.id, status: "let" },
    { code: "failed-precondition", reason: "status_not_for_kind" },
  );

  const move = { listingId: home.id, status: "under_offer" } as const;
  const moved = await call(agent.functions, "set_listing_status", move);
  assert.deepEqual(moved, { ...move, previousStatus: "active" });
});

test("feature_listing prices an active listing's days for the sheet, not a draft's", async () => {
  const home = await publicListing(agent, admin);

  const offer = await call(agent.functions, "feature_listing", { listingId: home.id, days: 7 });
  assert.deepEqual([offer.amount, offer.days], [{ amount: 3500, currency: "GBP" }, 7]);
  assert.match(offer.clientSecret, /^pi_.+_secret_/);
  assert.match(offer.customerId, /^cus_/);

  const unpublished = await createListing(agent, draft(agent));
  await refused(
    agent,
    "feature_listing",
    { listingId: unpublished.id, days: 7 },
    { code: "failed-precondition", reason: "listing_not_active" },
  );
});

// What the plan changes (review publishes a plan agent's listing without an admin) is
// the review's rule, tested in tests/listings/test_lifecycle.py; here, the callable's
// wiring: Stripe through localstripe, the answer, and the plan on the profile, live.
test("start_agent_plan puts an agent on the plan", async () => {
  const pro = await newAgent(admin, "pro");

  const plan = await call(pro.functions, "start_agent_plan", { paymentMethodId: "pm_card_visa" });
  assert.deepEqual([plan.status, plan.plan, plan.requiresAction], ["active", "agent_pro", false]);
  assert.match(plan.subscriptionId, /^sub_/);
  const profile = docOf<Profile>(pro.db, "users", pro.uid);
  await waitForDoc(profile, (s) => s.data()?.plan === "agent_pro", "the plan on the profile");
});

test("start_agent_plan refuses a declined card", async () => {
  const hopeful = await newAgent(admin, "hopeful");

  await refused(
    hopeful,
    "start_agent_plan",
    { paymentMethodId: "pm_card_visa_chargeDeclined" },
    { code: "failed-precondition", reason: "card_declined" },
  );
});
