// Chat: a buyer opens the one conversation about a public listing with its agent (id
// `{listingId}__{buyerId}`, counted against the daily cap in the same batch), and the two
// exchange messages, each seeing the other's through a live listener. Nobody else reads
// it, and a conversation under any other id is refused.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  doc,
  getDoc,
  orderBy,
  query,
  serverTimestamp,
  writeBatch,
} from "firebase/firestore";

import {
  type Conversation,
  type ConversationCreate,
  conversationId,
  type Message,
  type MessageCreate,
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
  waitForQuery,
} from "./support.js";

let admin: Person, agent: Person, buyer: Person, stranger: Person;
let listingId: string;

before(async () => {
  ({ admin, agent, buyer } = await cast());
  stranger = await signUp("stranger");
  listingId = (await publicListing(agent, admin)).id;
});
after(closeAll);

function conversation(person: Person, id: string) {
  return docOf<Conversation>(person.db, "conversations", id);
}

function messages(person: Person, id: string) {
  return collectionOf<Message>(person.db, "conversations", id, "messages");
}

async function open(id: string, opened: ConversationCreate): Promise<void> {
  const batch = writeBatch(buyer.db);
  batch.set(conversation(buyer, id), opened);
  await countCreate(batch, buyer, "conversations", id);
  await batch.commit();
}

async function send(from: Person, id: string, text: string): Promise<void> {
  const message = doc(messages(from, id), unique("m"));
  const sent: MessageCreate = { senderId: from.uid, text, createdAt: serverTimestamp() };
  const batch = writeBatch(from.db);
  batch.set(message, sent);
  await countCreate(batch, from, "messages", `${id}/${message.id}`);
  await batch.commit();
}

function opening(): ConversationCreate {
  return {
    listingId,
    buyerId: buyer.uid,
    agentId: agent.uid,
    participantIds: [buyer.uid, agent.uid],
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
}

test("a buyer and the listing's agent talk, each hearing the other live", async () => {
  const id = conversationId(listingId, buyer.uid);
  await open(id, opening());

  const inOrder = (p: Person) => query(messages(p, id), orderBy("createdAt"));
  const agentHears = waitForQuery(inOrder(agent), (s) => s.size === 1, "the agent's first message");
  await send(buyer, id, "Is the flat still available?");
  const first = (await agentHears).docs[0]!.data();
  assert.deepEqual([first.senderId, first.text], [buyer.uid, "Is the flat still available?"]);

  const buyerHears = waitForQuery(inOrder(buyer), (s) => s.size === 2, "the agent's reply");
  await send(agent, id, "It is: viewings on Saturday.");
  const thread = (await buyerHears).docs.map((d) => [d.data().senderId, d.data().text]);
  assert.deepEqual(thread, [
    [buyer.uid, "Is the flat still available?"],
    [agent.uid, "It is: viewings on Saturday."],
  ]);

  await assert.rejects(getDoc(conversation(stranger, id)), { code: "permission-denied" });
});

test("a conversation under any id but {listingId}__{buyerId} is refused", async () => {
  await assert.rejects(open(unique("chat"), opening()), { code: "permission-denied" });
});
