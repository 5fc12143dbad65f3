// Offers as the apps use them: a buyer (address verified) offers on a public listing and a
// rival offers too; the agent's inbox hears of the offer and they counter; the buyer's
// listener sees the counter and the buyer accepts it; the listing goes under offer and the
// rival's offer is rejected ("another offer was accepted"), which the rival is told. Bad
// input: a deposit from the client, an expiry over 14 days, a move that is not yours.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { type Notification, type Offer, call } from "../../contract/index.js";
import { publicListing } from "./homes.js";
import {
  cast,
  closeAll,
  collectionOf,
  docOf,
  type Person,
  refused,
  signUp,
  waitForDoc,
  waitForQuery,
} from "./support.js";

let agent: Person, buyer: Person, rival: Person;
let listingId: string;

before(async () => {
  let admin: Person;
  ({ admin, agent, buyer } = await cast({ verified: true }));
  rival = await signUp("rival", { verified: true });
  listingId = (await publicListing(agent, admin)).id;
});
after(closeAll);

const DAY = 24 * 3600 * 1000;

function offerOf(amount: number, days = 7) {
  return {
    listingId,
    amount,
    currency: "GBP" as const,
    conditions: { mortgageAgreedInPrinciple: true, cashBuyer: false, chainFree: true },
    expiresAt: new Date(Date.now() + days * DAY).toISOString(),
    message: "We love the garden.",
  };
}

async function heard(person: Person, id: string, what: string): Promise<Notification> {
  const inbox = collectionOf<Notification>(person.db, "users", person.uid, "notifications");
  const seen = await waitForQuery(inbox, (s) => s.docs.some((d) => d.id === id), what);
  return seen.docs.find((d) => d.id === id)!.data();
}

test("bad offers are refused: a deposit from the client, an expiry past 14 days", async () => {
  const withDeposit = await refused(
    buyer,
    "make_offer",
    { ...offerOf(340_000_00), depositAmount: 1 } as never,
    { code: "invalid-argument", reason: "invalid_argument" },
  );
  assert.ok(withDeposit.fields.length > 0);
  await refused(buyer, "make_offer", offerOf(340_000_00, 15), {
    code: "failed-precondition",
    reason: "bad_expiry",
  });
});

test("an offer, a counter, its acceptance: the listing goes under offer, the rival's offer loses", async () => {
  const made = await call(buyer.functions, "make_offer", offerOf(340_000_00));
  const rivals = await call(rival.functions, "make_offer", offerOf(335_000_00));
  assert.deepEqual([made.status, made.amount, made.deposit ?? null], ["open", 340_000_00, null]);
  const told = await heard(agent, `offer-${made.offerId}-1`, "the agent told of the offer");
  assert.deepEqual([told.kind, told.title], ["offer", "New offer"]);

  // Only the buyer may accept a counter: the buyer is refused accepting their own offer.
  await refused(buyer, "accept_offer", { offerId: made.offerId }, {
    code: "failed-precondition",
    reason: "move_not_allowed",
  });
  const mine = docOf<Offer>(buyer.db, "offers", made.offerId);
  const countered = waitForDoc(mine, (s) => s.data()?.status === "countered", "the counter");
  await call(agent.functions, "counter_offer", { offerId: made.offerId, amount: 345_000_00 });
  assert.equal((await countered).data()!.counterAmount?.amount, 345_000_00);

  const accepted = await call(buyer.functions, "accept_offer", { offerId: made.offerId });
  assert.deepEqual([accepted.status, accepted.amount], ["accepted", 345_000_00]);
  const lost = await waitForDoc(
    docOf<Offer>(rival.db, "offers", rivals.offerId),
    (s) => s.data()?.status === "rejected",
    "the rival's offer rejected",
  );
  assert.equal(lost.data()!.rejectionReason, "Another offer was accepted.");
  const rivalTold = await heard(rival, `offer-${rivals.offerId}-2`, "the rival told");
  assert.equal(rivalTold.title, "Offer not accepted");
  const agentTold = await heard(agent, `offer-${made.offerId}-3`, "the agent told of the acceptance");
  assert.equal(agentTold.title, "Counter-offer accepted");

  // The listing is under offer now: a new offer is a back-up, and the rival may not read
  // the buyer's offer.
  await assert.rejects(
    waitForDoc(docOf<Offer>(rival.db, "offers", made.offerId), () => true, "a stranger's read", 5),
  );
});
