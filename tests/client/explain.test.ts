// Deliberately wrong writes, as an app developer makes them: each is refused by the rules
// (a bare permission-denied), and the dev-only explain tool names the exact reason.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { doc, Timestamp, writeBatch } from "firebase/firestore";

import type { ListingCreate } from "../../contract/index.js";
import { explainRefusal } from "../../contract/explain.js";
import { draft } from "./homes.js";
import { closeAll, countCreate, firstAdmin, newAgent, type Person, unique } from "./support.js";

let agent: Person;

before(async () => {
  agent = await newAgent(await firstAdmin());
});
after(closeAll);

/** Write ``data`` as a new listing the way an app does (with its count in the batch, so
 * the cap is not what refuses it); returns the refusal. */
async function refusedListing(id: string, data: object): Promise<Error> {
  const batch = writeBatch(agent.db);
  batch.set(doc(agent.db, "listings", id), data);
  await countCreate(batch, agent, "listings", id);
  const error = await batch.commit().then(
    () => assert.fail("the rules accepted the write"),
    (err: unknown) => err as Error & { code: string },
  );
  assert.equal(error.code, "permission-denied");
  return error;
}

/** What explain_refusal says failed, as [check, field] pairs. */
async function explained(id: string, data: object, denial: Error) {
  const why = await explainRefusal(agent.functions, {
    path: `listings/${id}`,
    op: "create",
    data,
    denial,
  });
  assert.equal(why.allowed, false);
  return why.checks.map((c) => [c.check, c.field]);
}

test("a field the contract does not have: refused, and explained as that unknown field", async () => {
  // @ts-expect-error -- the contract has no `colour`: the compiler refuses it first
  const wrong: ListingCreate = { ...draft(agent), colour: "red" };
  const id = unique("colour");

  const denial = await refusedListing(id, wrong);

  assert.deepEqual(await explained(id, wrong, denial), [["unknown_field", "colour"]]);
});

test("the client's clock for createdAt: refused, and explained as serverTimestamp() expected", async () => {
  // The contract says createdAt is a FieldValue (serverTimestamp()), but a Timestamp has
  // FieldValue's shape, so the compiler lets this through: only the rules catch it.
  const wrong: ListingCreate = { ...draft(agent), createdAt: Timestamp.now() };
  const id = unique("clock");

  const denial = await refusedListing(id, wrong);

  assert.deepEqual(await explained(id, wrong, denial), [["request_time_expected", "createdAt"]]);
});
