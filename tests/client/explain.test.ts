// Deliberately wrong writes, as an app developer makes them: each is refused by the rules
// (a bare permission-denied), and the dev-only explain tool names the exact reason; the
// tool itself refuses a request that names no document.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { doc, Timestamp, updateDoc, writeBatch } from "firebase/firestore";

import { explainRefusal, type RefusedWrite } from "../../contract/explain.js";
import {
  callableError,
  type ListingCreate,
  type ListingUpdate,
} from "../../contract/index.js";
import { createListing, draft } from "./homes.js";
import { closeAll, countCreate, firstAdmin, newAgent, type Person, unique } from "./support.js";

let agent: Person;

before(async () => {
  agent = await newAgent(await firstAdmin());
});
after(closeAll);

/** The write's refusal: it must be one (permission-denied, as the rules give it). */
async function refusal(write: Promise<void>): Promise<Error> {
  const error = await write.then(
    () => assert.fail("the rules accepted the write"),
    (err: unknown) => err as Error & { code: string },
  );
  assert.equal(error.code, "permission-denied");
  return error;
}

/** Write ``data`` as a new listing the way an app does, with its count in the batch (so
 * the cap is not what refuses it). */
async function createWith(id: string, data: object): Promise<void> {
  const batch = writeBatch(agent.db);
  batch.set(doc(agent.db, "listings", id), data);
  await countCreate(batch, agent, "listings", id);
  return batch.commit();
}

/** What explain_refusal says failed, as [check, field] pairs. */
async function explained(write: RefusedWrite): Promise<[string, string | null | undefined][]> {
  const why = await explainRefusal(agent.functions, write);
  assert.equal(why.allowed, false);
  return why.checks.map((c) => [c.check, c.field]);
}

test("an unknown field: refused, and explained as that field", async () => {
  // @ts-expect-error -- the contract has no `colour`: the compiler refuses it first
  const data: ListingCreate = { ...draft(agent), colour: "red" };
  const id = unique("colour");

  const denial = await refusal(createWith(id, data));

  const why = await explained({ path: `listings/${id}`, op: "create", data, denial });
  assert.deepEqual(why, [["unknown_field", "colour"]]);
});

test("a client clock for createdAt: refused, explained as serverTimestamp() expected", async () => {
  // The contract says createdAt is a FieldValue (serverTimestamp()), but a Timestamp has
  // FieldValue's shape, so the compiler lets this through: only the rules catch it.
  const data: ListingCreate = { ...draft(agent), createdAt: Timestamp.now() };
  const id = unique("clock");

  const denial = await refusal(createWith(id, data));

  const why = await explained({ path: `listings/${id}`, op: "create", data, denial });
  assert.deepEqual(why, [["request_time_expected", "createdAt"]]);
});

test("an edit without serverTimestamp(): refused, explained as updatedAt expected", async () => {
  const home = await createListing(agent, draft(agent));
  // @ts-expect-error -- every update must stamp updatedAt: the compiler says so first
  const data: ListingUpdate = { title: "Bright two-bedroom flat, new kitchen" };

  const denial = await refusal(updateDoc(home, data));

  const why = await explained({ path: home.path, op: "update", data, denial });
  assert.deepEqual(why, [["request_time_expected", "updatedAt"]]);
});

test("explain_refusal refuses a path that names no document", async () => {
  const error = await explainRefusal(agent.functions, { path: "listings", op: "create" }).then(
    (answer) => assert.fail(`explained ${JSON.stringify(answer)}`),
    (err: unknown) => err,
  );

  const refused = callableError(error, "explain_refusal");
  assert.ok(refused, `not a refusal: ${String(error)}`);
  assert.deepEqual([refused.code, refused.reason], ["invalid-argument", "invalid_argument"]);
  assert.deepEqual(
    refused.fields.map((f) => f.field),
    ["path"],
  );
});
