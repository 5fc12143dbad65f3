// Chat as a messaging app shows it: a buyer with a verified address opens the one
// conversation about a public listing with its agent (id `{listingId}__{buyerId}`,
// counted against the daily cap in the same batch) and sends; the agent's conversation
// list (participantIds array-contains me, newest activity first) moves it to the top,
// its unread count and the agent's badge say 1, a push reaches the agent's phone; the
// agent marks it read (its own `lastReadAt` entry, the request time) and the buyer sees
// the receipt live while the counts go to 0. Then block and unblock, reports only admins
// read, and an unverified account that cannot open a conversation at all.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  deleteField,
  doc,
  getDoc,
  getDocs,
  limit,
  orderBy,
  query,
  serverTimestamp,
  Timestamp,
  updateDoc,
  where,
  writeBatch,
} from "firebase/firestore";

import {
  type Conversation,
  type ConversationCreate,
  type ConversationUpdate,
  conversationId,
  type DeviceCreate,
  holdUsage,
  type Message,
  type MessageCreate,
  type PrivateAccount,
  type Report,
  type ReportCreate,
  type UnreadCounter,
} from "../../contract/index.js";
import { publicListing } from "./homes.js";
import {
  cast,
  closeAll,
  collectionOf,
  countCreate,
  docOf,
  type Person,
  signUp,
  unique,
  verifyEmail,
  waitForDoc,
  waitForQuery,
  waitForServerDocs,
} from "./support.js";

let admin: Person, agent: Person, buyer: Person, neighbour: Person, stranger: Person;
let listingId: string;
let agentToken: string;

before(async () => {
  ({ admin, agent, buyer } = await cast({ verified: true }));
  [neighbour, stranger] = await Promise.all([
    signUp("neighbour", { verified: true }),
    signUp("stranger"),
  ]);
  listingId = (await publicListing(agent, admin)).id;
  agentToken = await registerDevice(agent);
});
after(closeAll);

// ---- what a chat client writes

function conversation(person: Person, id: string) {
  return docOf<Conversation>(person.db, "conversations", id);
}

function messages(person: Person, id: string) {
  return collectionOf<Message>(person.db, "conversations", id, "messages");
}

/** MY_CONVERSATIONS: the caller's conversations, newest activity first (pages ≤ 50). */
function myConversations(person: Person, pageSize = 20) {
  return query(
    collectionOf<Conversation>(person.db, "conversations"),
    where("participantIds", "array-contains", person.uid),
    orderBy("updatedAt", "desc"),
    limit(pageSize),
  );
}

function badge(person: Person) {
  return docOf<UnreadCounter>(person.db, "users", person.uid, "counters", "unread");
}

function opening(who: Person): ConversationCreate {
  return {
    listingId,
    buyerId: who.uid,
    agentId: agent.uid,
    participantIds: [who.uid, agent.uid],
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
}

/** Open the conversation about the listing as ``who`` (a buyer); its id. */
async function open(who: Person, id = conversationId(listingId, who.uid)): Promise<string> {
  const batch = writeBatch(who.db);
  batch.set(conversation(who, id), opening(who));
  await countCreate(batch, who, "conversations", id);
  await batch.commit();
  return id;
}

/** Send ``text`` in conversation ``id`` as ``from``; the message's id. */
async function send(from: Person, id: string, text: string): Promise<string> {
  const message = doc(messages(from, id), unique("m"));
  const sent: MessageCreate = { senderId: from.uid, text, createdAt: serverTimestamp() };
  const batch = writeBatch(from.db);
  batch.set(message, sent);
  await countCreate(batch, from, "messages", `${id}/${message.id}`);
  await batch.commit();
  return message.id;
}

/** Mark conversation ``id`` read: the reader's own entry, set to the request time. */
async function markRead(reader: Person, id: string): Promise<void> {
  const read: ConversationUpdate = { [`lastReadAt.${reader.uid}`]: serverTimestamp() };
  await updateDoc(conversation(reader, id), read);
}

/** Block the other participant (set: the request time) or unblock (delete the entry). */
async function setBlocked(person: Person, id: string, blocked: boolean): Promise<void> {
  const block: ConversationUpdate = {
    [`blockedBy.${person.uid}`]: blocked ? serverTimestamp() : deleteField(),
  };
  await updateDoc(conversation(person, id), block);
}

/** Report conversation ``id`` (or one of its messages) for moderation; the report's id. */
async function report(
  reporter: Person,
  id: string,
  messageId: string | null,
  reason: ReportCreate["reason"],
): Promise<string> {
  const ref = doc(collectionOf<Report>(reporter.db, "reports"));
  const filed: ReportCreate = {
    reporterId: reporter.uid,
    conversationId: id,
    messageId,
    reason,
    note: "Asked me to pay a deposit by bank transfer before any viewing.",
    createdAt: serverTimestamp(),
  };
  const batch = writeBatch(reporter.db);
  batch.set(ref, filed);
  await countCreate(batch, reporter, "reports", ref.id);
  await batch.commit();
  return ref.id;
}

/** Register a phone for push, held against the device cap in the same batch; its token
 * once the functions keep it where the pushes read it. */
async function registerDevice(person: Person): Promise<string> {
  const token = unique("fcm");
  const device: DeviceCreate = {
    token,
    ownerId: person.uid,
    platform: "android",
    appVersion: "1.0.0",
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
  const batch = writeBatch(person.db);
  batch.set(docOf(person.db, "users", person.uid, "devices", token), device);
  holdUsage(batch, person.db, person.uid, "devices", token);
  await batch.commit();
  const account = docOf<PrivateAccount>(person.db, "users", person.uid, "private", "account");
  await waitForDoc(account, (s) => !!s.data()?.pushTokens?.includes(token), "the synced token");
  return token;
}

const ids = (s: { docs: { id: string }[] }) => s.docs.map((d) => d.id);

// ---- the journey

test("a message moves the conversation up the agent's list, counts 1, pushes, and reading it shows a receipt and counts 0", async () => {
  const mine = await open(buyer);
  const theirs = await open(neighbour); // opened later: on top until a message moves mine
  await waitForQuery(
    myConversations(agent),
    (s) => ids(s).join() === [theirs, mine].join(),
    "the agent's list, newest opened first",
  );

  const moved = waitForQuery(
    myConversations(agent),
    (s) => ids(s).join() === [mine, theirs].join() && !!s.docs[0]!.data().lastMessage,
    "the agent's list with the buyer's conversation on top",
  );
  const text = "Is the flat still available?";
  const messageId = await send(buyer, mine, text);
  const top = (await moved).docs[0]!.data();
  const sent = (await getDoc(doc(messages(buyer, mine), messageId))).data()!;
  assert.deepEqual(top.lastMessage, { messageId, text, senderId: buyer.uid, sentAt: sent.createdAt });
  assert.ok(top.updatedAt.isEqual(sent.createdAt), "updatedAt is the newest message's time");

  // Unread: this conversation's count and the app badge, as the agent's app listens.
  await waitForDoc(conversation(agent, mine), (s) => s.data()?.unread?.[agent.uid] === 1, "unread 1");
  await waitForDoc(
    badge(agent),
    (s) => s.data()?.messages === 1 && s.data()?.conversations === 1,
    "the agent's badge at 1",
  );
  const inbox = docOf(agent.db, "users", agent.uid, "notifications", `chat-${mine}-0`);
  await waitForDoc(inbox, (s) => s.data()?.["read"] === false, "the agent's inbox entry");
  // The phone also hears of the listing's approval: the pushes about this conversation.
  const about = (docs: Record<string, unknown>[]) =>
    docs.filter((d) => (d["data"] as Record<string, string>)["conversationId"] === mine);
  const pushes = about(
    await waitForServerDocs(
      "_pushOutbox",
      "token",
      agentToken,
      (docs) => about(docs).length > 0,
      "a push to the agent's phone",
    ),
  );
  assert.equal(pushes.length, 1);
  assert.deepEqual(
    [pushes[0]!["body"], (pushes[0]!["data"] as Record<string, string>)["messageId"]],
    [text, messageId],
  );

  // The agent opens the conversation: marks it read; the buyer's app shows the receipt.
  const receipt = waitForDoc(
    conversation(buyer, mine),
    (s) => {
      const read = s.data()?.lastReadAt?.[agent.uid];
      return read instanceof Timestamp && read.toMillis() >= sent.createdAt.toMillis();
    },
    "the agent's read receipt, seen by the buyer",
  );
  await markRead(agent, mine);
  await receipt;
  await waitForDoc(conversation(agent, mine), (s) => s.data()?.unread?.[agent.uid] === 0, "unread 0");
  await waitForDoc(
    badge(agent),
    (s) => s.data()?.messages === 0 && s.data()?.conversations === 0,
    "the agent's badge at 0",
  );
  await waitForDoc(inbox, (s) => s.data()?.["read"] === true, "the inbox entry read");

  // The reply goes the other way: the buyer hears it live, and its badge says 1.
  const thread = query(messages(buyer, mine), orderBy("createdAt"));
  const heard = waitForQuery(thread, (s) => s.size === 2, "the agent's reply");
  await send(agent, mine, "It is: viewings on Saturday.");
  assert.deepEqual(
    (await heard).docs.map((d) => [d.data().senderId, d.data().text]),
    [
      [buyer.uid, text],
      [agent.uid, "It is: viewings on Saturday."],
    ],
  );
  await waitForDoc(badge(buyer), (s) => s.data()?.messages === 1, "the buyer's badge at 1");
  await markRead(buyer, mine);
  await waitForDoc(badge(buyer), (s) => s.data()?.messages === 0, "the buyer's badge at 0");

  await assert.rejects(getDoc(conversation(stranger, mine)), { code: "permission-denied" });
});

test("a participant writes only its own entries: never the other's receipt, never a count", async () => {
  const id = conversationId(listingId, buyer.uid);
  const ref = conversation(buyer, id);
  // The other's key has the same type as one's own: only the rules can tell them apart.
  const theirs: ConversationUpdate = { [`lastReadAt.${agent.uid}`]: serverTimestamp() };
  await assert.rejects(updateDoc(ref, theirs), { code: "permission-denied" });
  // @ts-expect-error -- counts are the functions': the contract refuses them first (a
  // changed one: writing the value a field already has changes nothing, and is allowed)
  const count: ConversationUpdate = { [`unread.${buyer.uid}`]: 99 };
  await assert.rejects(updateDoc(ref, count), { code: "permission-denied" });
  // @ts-expect-error -- so is updatedAt (the newest message's time)
  const touched: ConversationUpdate = { updatedAt: serverTimestamp() };
  await assert.rejects(updateDoc(ref, touched), { code: "permission-denied" });
});

test("the agent blocks the buyer, whose messages are refused until it unblocks", async () => {
  const id = conversationId(listingId, buyer.uid);
  await setBlocked(agent, id, true);
  await assert.rejects(send(buyer, id, "Hello?"), { code: "permission-denied" });
  await send(agent, id, "Last word before the block is lifted."); // the blocker still writes
  await setBlocked(agent, id, false);
  await send(buyer, id, "Thanks, see you Saturday.");
  const thread = await getDocs(query(messages(buyer, id), orderBy("createdAt")));
  assert.equal(thread.docs.at(-1)!.data().text, "Thanks, see you Saturday.");
});

test("either participant reports, into a queue only admins read, completed by the functions", async () => {
  const id = conversationId(listingId, buyer.uid);
  const thread = await getDocs(query(messages(buyer, id), orderBy("createdAt")));
  const fromAgent = thread.docs.find((d) => d.data().senderId === agent.uid)!;
  const reported = await report(buyer, id, fromAgent.id, "scam");
  const reportedBack = await report(agent, id, null, "harassment");

  await assert.rejects(getDoc(docOf(buyer.db, "reports", reported)), { code: "permission-denied" });
  await assert.rejects(getDocs(collectionOf<Report>(agent.db, "reports")), {
    code: "permission-denied",
  });
  await assert.rejects(report(stranger, id, null, "spam"), { code: "permission-denied" });

  const queued = await waitForDoc(
    docOf<Report>(admin.db, "reports", reported),
    (s) => s.data()?.reportedUid === agent.uid,
    "the report completed for moderation",
  );
  assert.deepEqual(
    [queued.data()!.status, queued.data()!.listingId, queued.data()!.excerpt],
    ["open", listingId, fromAgent.data().text],
  );
  await waitForDoc(
    docOf<Report>(admin.db, "reports", reportedBack),
    (s) => s.data()?.reportedUid === buyer.uid && s.data()?.excerpt === null,
    "the conversation's report completed",
  );
});

test("an unverified account cannot open a conversation; once verified it can", async () => {
  await assert.rejects(open(stranger), { code: "permission-denied" });
  await verifyEmail(stranger);
  await open(stranger);
});

test("a conversation under any id but {listingId}__{buyerId} is refused", async () => {
  await assert.rejects(open(buyer, unique("chat")), { code: "permission-denied" });
});
