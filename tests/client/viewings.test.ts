// Viewings as the apps use them: the agent publishes viewing hours for a public listing
// through the rules (the document and its usage hold in one batch; a time off the
// 15-minute grid is refused); a buyer lists the free slots (UTC and London time),
// requests one with a request key (a retry with the same key is the same viewing) and a
// second buyer asking for the same slot is told `slot_taken`; the agent hears of the
// request in their inbox and confirms; the buyer's listener sees the viewing confirmed
// and their inbox says so; the buyer's calendar link serves an .ics with the viewing in
// London time; the buyer cancels with a reason and the slot is free again. Bad input: a
// window over 14 days, someone else's viewing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { serverTimestamp, writeBatch } from "firebase/firestore";

import {
  type Availability,
  type AvailabilityCreate,
  call,
  holdUsage,
  type Notification,
  type SlotView,
  type Viewing,
  type WeeklyHours,
} from "../../contract/index.js";
import { publicListing } from "./homes.js";
import {
  cast,
  closeAll,
  collectionOf,
  docOf,
  type Person,
  refused,
  signUp,
  unique,
  waitForDoc,
  waitForQuery,
} from "./support.js";

let admin: Person, agent: Person, buyer: Person, rival: Person;
let listingId: string;

before(async () => {
  ({ admin, agent, buyer } = await cast());
  rival = await signUp("rival");
  listingId = (await publicListing(agent, admin)).id;
});
after(closeAll);

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
/** Every day, all day, London time: whatever hour the journey runs at, slots are ahead. */
const ALL_DAY: WeeklyHours = {
  mon: "00:00-24:00",
  tue: "00:00-24:00",
  wed: "00:00-24:00",
  thu: "00:00-24:00",
  fri: "00:00-24:00",
  sat: "00:00-24:00",
  sun: "00:00-24:00",
};

/** The agent's hours for ``scope`` (a listing of theirs), with the hold the rules ask
 * for, in one batch, as the agent's app writes them. */
function publishHours(scope: string, weekly: WeeklyHours): Promise<void> {
  const hours: AvailabilityCreate = {
    weekly,
    slotMinutes: 30,
    timeZone: "Europe/London",
    datesOff: [],
    autoConfirm: false, // each request waits for the agent
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
  const batch = writeBatch(agent.db);
  batch.set(docOf<Availability>(agent.db, "users", agent.uid, "availability", scope), hours);
  holdUsage(batch, agent.db, agent.uid, "availability", scope);
  return batch.commit();
}

/** The free slots of the listing from now on for ``days`` days, as the buyer sees them. */
async function freeSlots(person: Person, days = 3): Promise<SlotView[]> {
  const now = Date.now();
  const answer = await call(person.functions, "list_viewing_slots", {
    listingId,
    start: new Date(now).toISOString(),
    end: new Date(now + days * DAY).toISOString(),
  });
  assert.deepEqual([answer.listingId, answer.timeZone, answer.slotMinutes], [
    listingId,
    "Europe/London",
    30,
  ]);
  return answer.slots;
}

function inbox(person: Person) {
  return collectionOf<Notification>(person.db, "users", person.uid, "notifications");
}

/** The inbox entry ``id`` of ``person``'s, as their app's inbox listener shows it. */
async function heard(person: Person, id: string, what: string): Promise<Notification> {
  const seen = await waitForQuery(inbox(person), (s) => s.docs.some((d) => d.id === id), what);
  return seen.docs.find((d) => d.id === id)!.data();
}

test("hours off the 15-minute grid are refused; the agent's hours for the listing are kept", async () => {
  await assert.rejects(publishHours(listingId, { ...ALL_DAY, mon: "09:10-12:00" }), {
    code: "permission-denied",
  });
  await publishHours(listingId, ALL_DAY);
  const kept = await waitForDoc(
    docOf<Availability>(agent.db, "users", agent.uid, "availability", listingId),
    (s) => s.exists(),
    "the published hours",
    10,
  );
  assert.equal(kept.data()!.weekly.mon, "00:00-24:00");
});

// The viewing the next three tests follow, and its slot.
let viewingId: string;
let chosen: SlotView;

test("a buyer requests a free slot (a retry is the same viewing, a rival is told it is taken); the agent confirms", async () => {
  // Slots in UTC and in London time (the same instants), 30 minutes each, none past.
  const listed = await freeSlots(buyer);
  assert.ok(listed.length > 0, "no free slots in the next three days");
  for (const slot of listed.slice(0, 5)) {
    assert.match(slot.start, /Z$/);
    assert.match(slot.localStart, /[+-]\d\d:\d\d$/);
    assert.equal(Date.parse(slot.localStart), Date.parse(slot.start));
    assert.equal(Date.parse(slot.localEnd), Date.parse(slot.end));
    assert.equal(Date.parse(slot.end) - Date.parse(slot.start), 30 * 60 * 1000);
    assert.ok(Date.parse(slot.start) > Date.now() - 60 * 1000);
  }
  // A slot a few hours ahead: the request waits at most until it starts.
  chosen = listed.find((s) => Date.parse(s.start) >= Date.now() + 4 * HOUR)!;
  assert.ok(chosen, `no slot four hours ahead among ${listed.length}`);

  const request = {
    listingId,
    start: chosen.start,
    requestKey: unique("key"),
    note: "Could we see the garden too?",
  };
  const booked = await call(buyer.functions, "request_viewing", request);
  assert.deepEqual([booked.listingId, booked.status, booked.slotStart, booked.slotEnd], [
    listingId,
    "requested",
    chosen.start,
    chosen.end,
  ]);
  assert.ok(booked.expiresAt && Date.parse(booked.expiresAt) <= Date.parse(chosen.start));
  viewingId = booked.viewingId;
  // A retry (the app lost the answer): the same key, the same viewing, nothing new.
  assert.deepEqual(await call(buyer.functions, "request_viewing", request), booked);

  // Someone else wants the same time: taken, said in the refusal's details.
  const taken = await refused(
    rival,
    "request_viewing",
    { listingId, start: chosen.start, requestKey: unique("rival") },
    { code: "failed-precondition", reason: "slot_taken" },
  );
  assert.equal(taken.details["reason"], "slot_taken");
  assert.ok(!(await freeSlots(buyer)).some((s) => s.start === chosen.start), "still listed");

  // The agent's inbox hears of the request; the agent confirms it.
  const asked = await heard(agent, `viewing-${viewingId}-1`, "the agent told of the request");
  assert.deepEqual([asked.kind, asked.data?.["change"]], ["viewing", "requested"]);
  const seen = waitForDoc(
    docOf<Viewing>(buyer.db, "viewings", viewingId),
    (s) => s.data()?.status === "confirmed",
    "the buyer's viewing confirmed",
  );
  const confirmed = await call(agent.functions, "confirm_viewing", { viewingId });
  assert.deepEqual([confirmed.status, confirmed.expiresAt], ["confirmed", null]);
  const viewing = (await seen).data()!;
  assert.deepEqual(
    [viewing.requesterId, viewing.agentId, viewing.revision, viewing.lastChange.kind],
    [buyer.uid, agent.uid, 2, "confirmed"],
  );
  assert.equal(viewing.slotStart.toMillis(), Date.parse(chosen.start));
  const told = await heard(buyer, `viewing-${viewingId}-2`, "the buyer told of the confirmation");
  assert.deepEqual([told.kind, told.title], ["viewing", "Viewing confirmed"]);
});

test(
  "the buyer's calendar link serves an .ics with the viewing at London wall-clock time",
  async () => {
    const { url } = await call(buyer.functions, "calendar_link", {});
    const feed = await fetch(url);
    assert.equal(feed.status, 200, `${url} answered ${feed.status}`);
    assert.match(feed.headers.get("content-type") ?? "", /^text\/calendar\b/);
    const lines = (await feed.text()).split(/\r\n/);
    assert.equal(lines.filter((l) => l === "BEGIN:VEVENT").length, 1, lines.join("\n"));
    const begin = lines.indexOf("BEGIN:VEVENT");
    const event = lines.slice(begin, lines.indexOf("END:VEVENT", begin));
    assert.ok(event.includes(`UID:${viewingId}@homefront`), event.join("\n"));
    // London's wall clock: the slot's own local time, without its offset.
    const wall = chosen.localStart.slice(0, 19).replace(/[-:]/g, "");
    assert.ok(event.includes(`DTSTART;TZID=Europe/London:${wall}`), event.join("\n"));
    assert.ok(event.includes("STATUS:CONFIRMED"), event.join("\n"));
  },
);

test("the buyer cancels with a reason: the agent is told, and the slot is free again", async () => {
  const reason = "We found another flat.";
  const cancelled = await call(buyer.functions, "cancel_viewing", { viewingId, reason });
  assert.equal(cancelled.status, "cancelled");
  const told = await heard(agent, `viewing-${viewingId}-3`, "the agent told of the cancel");
  assert.equal(told.title, "Viewing cancelled");
  assert.match(told.body, /Reason: We found another flat\./);
  assert.ok((await freeSlots(buyer)).some((s) => s.start === chosen.start), "not free again");
});

test("a window over 14 days is invalid; someone else's viewing is not found", async () => {
  const now = Date.now();
  const tooLong = await refused(
    buyer,
    "list_viewing_slots",
    {
      listingId,
      start: new Date(now).toISOString(),
      end: new Date(now + 15 * DAY).toISOString(),
    },
    { code: "invalid-argument", reason: "invalid_argument" },
  );
  assert.ok(tooLong.fields.length > 0);

  const slot = (await freeSlots(buyer)).find((s) => Date.parse(s.start) >= Date.now() + 6 * HOUR)!;
  const { viewingId } = await call(buyer.functions, "request_viewing", {
    listingId,
    start: slot.start,
    requestKey: unique("mine"),
  });
  // A stranger learns nothing, not even that it exists.
  const notFound = { code: "not-found", reason: "no_such_viewing" } as const;
  await refused(rival, "cancel_viewing", { viewingId, reason: "Not mine to cancel." }, notFound);
  await refused(rival, "confirm_viewing", { viewingId }, notFound);
  // The buyer is not the agent: asked to confirm their own request, they are refused.
  await refused(buyer, "confirm_viewing", { viewingId }, {
    code: "permission-denied",
    reason: "not_yours_to_move",
  });
});
