// What every journey needs: clients on the emulators the test run started, fresh users
// signed up through the SDK, an admin and agents made the way the product makes them,
// and waits for what functions write, through live listeners.
import assert from "node:assert/strict";

import { deleteApp, type FirebaseApp, initializeApp } from "firebase/app";
import {
  type Auth,
  connectAuthEmulator,
  applyActionCode,
  createUserWithEmailAndPassword,
  getAuth,
  sendEmailVerification,
  type User,
} from "firebase/auth";
import {
  collection,
  type CollectionReference,
  connectFirestoreEmulator,
  doc,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  getDoc,
  getFirestore,
  onSnapshot,
  type Query,
  type QuerySnapshot,
  setLogLevel,
  type WriteBatch,
} from "firebase/firestore";
import { connectFunctionsEmulator, type Functions, getFunctions } from "firebase/functions";

import {
  call,
  type CallableName,
  callableError,
  countUsage,
  type RefusalOf,
  type RequestOf,
  type Usage,
  usageRef,
} from "../../contract/index.js";

/** Where the emulators are: test_journeys.py passes the session's stack through these. */
export const emulators = {
  project: required("GCLOUD_PROJECT"),
  auth: required("FIREBASE_AUTH_EMULATOR_HOST"),
  firestore: required("FIRESTORE_EMULATOR_HOST"),
  functions: required("FUNCTIONS_EMULATOR_HOST"),
};

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the journeys through tests/client/test_journeys.py`);
  }
  return value;
}

function hostPort(address: string): [string, number] {
  const [host, port] = address.split(":");
  return [host!, Number(port)];
}

/** One app instance as a phone would hold it: its own Auth, Firestore and Functions. */
export interface Client {
  app: FirebaseApp;
  auth: Auth;
  db: Firestore;
  functions: Functions;
}

/** A signed-in client, and who it is. */
export interface Person extends Client {
  user: User;
  uid: string;
  email: string;
}

// A refused write is an expected outcome in several journeys, and its error (with the
// emulator's rule report) reaches the test anyway: the SDK's own warnings are noise.
setLogLevel("error");

const opened: FirebaseApp[] = [];
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let counter = 0;

/** A client on the emulators, signed in as nobody yet. */
export function client(): Client {
  counter += 1;
  // apiKey is required by Auth's SDK; the emulator accepts any.
  const app = initializeApp({ projectId: emulators.project, apiKey: "demo-key" }, `c${counter}`);
  opened.push(app);
  const auth = getAuth(app);
  connectAuthEmulator(auth, `http://${emulators.auth}`, { disableWarnings: true });
  const db = getFirestore(app);
  connectFirestoreEmulator(db, ...hostPort(emulators.firestore));
  const functions = getFunctions(app, "us-central1");
  connectFunctionsEmulator(functions, ...hostPort(emulators.functions));
  return { app, auth, db, functions };
}

/** The document at ``path`` as the contract's type ``T`` (reads give ``T``; writes take
 * the contract's Create or Update shapes). Typed on both sides of the SDK's converter
 * pair, so ``updateDoc`` accepts an interface such as ``ListingUpdate``. */
export function docOf<T extends DocumentData>(
  db: Firestore,
  path: string,
  ...segments: string[]
) {
  return doc(db, path, ...segments) as DocumentReference<T, T>;
}

/** The collection at ``path`` as the contract's type ``T``. */
export function collectionOf<T extends DocumentData>(
  db: Firestore,
  path: string,
  ...segments: string[]
) {
  return collection(db, path, ...segments) as CollectionReference<T, T>;
}

/** An address nobody else in this run (or an earlier run on the same emulators) has. */
export function uniqueEmail(label: string, domain = "example.com"): string {
  return `${unique(label)}@${domain}`;
}

export const PASSWORD = "correct-horse-1";

/** A new account, signed up through the SDK (the blocking function gives it a role);
 * ``verified``: its address verified as well (see verifyEmail), as opening a conversation
 * requires. */
export async function signUp(label: string, { verified = false } = {}): Promise<Person> {
  const c = client();
  const email = uniqueEmail(label);
  const { user } = await createUserWithEmailAndPassword(c.auth, email, PASSWORD);
  const person = { ...c, user, uid: user.uid, email };
  if (verified) await verifyEmail(person);
  return person;
}

/** Verify ``person``'s address the way a user does: the SDK asks for the email, the
 * Auth emulator keeps its link (it sends no mail: its REST API lists the codes), the
 * link's code is applied, and a fresh token carries ``email_verified``. */
export async function verifyEmail(person: Person): Promise<void> {
  await sendEmailVerification(person.user);
  const url = `http://${emulators.auth}/emulator/v1/projects/${emulators.project}/oobCodes`;
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`the Auth emulator did not list its codes: ${await response.text()}`);
  }
  const { oobCodes = [] } = (await response.json()) as {
    oobCodes?: { email: string; requestType: string; oobCode: string }[];
  };
  const sent = oobCodes.filter((c) => c.email === person.email && c.requestType === "VERIFY_EMAIL");
  const code = sent.at(-1)?.oobCode;
  if (!code) throw new Error(`no verification email for ${person.email} in the Auth emulator`);
  await applyActionCode(person.auth, code);
  await person.user.reload();
  const claims = (await person.user.getIdTokenResult(true)).claims;
  if (claims["email_verified"] !== true) {
    throw new Error(`${person.email}'s token is still unverified after applying its code`);
  }
}

/** The first admin: nobody can call set_user_role yet, so the Auth emulator's admin API
 * (the `owner` bearer) sets the claim, as a console operator would on a real project. */
export async function firstAdmin(): Promise<Person> {
  const admin = await signUp("admin");
  const url =
    `http://${emulators.auth}/identitytoolkit.googleapis.com/v1/projects/` +
    `${emulators.project}/accounts:update`;
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: "Bearer owner", "Content-Type": "application/json" },
    body: JSON.stringify({
      localId: admin.uid,
      customAttributes: JSON.stringify({ role: "admin" }),
    }),
  });
  if (!response.ok) {
    throw new Error(`the Auth emulator refused the admin claim: ${await response.text()}`);
  }
  await admin.user.getIdToken(true);
  return admin;
}

/** A new agent, promoted by ``admin`` through the product's own set_user_role. */
export async function newAgent(admin: Person, label = "agent"): Promise<Person> {
  const agent = await signUp(label);
  await call(admin.functions, "set_user_role", { uid: agent.uid, role: "agent" });
  const claims = (await agent.user.getIdTokenResult(true)).claims;
  if (claims["role"] !== "agent") {
    throw new Error(`the agent's token still says role ${String(claims["role"])}`);
  }
  return agent;
}

/** The people most journeys need: an admin, an agent and a buyer. */
export interface Cast {
  admin: Person;
  agent: Person;
  buyer: Person;
}

/** Sign up the cast (once per journey file: sign-ups and role changes cost seconds);
 * ``verified``: the buyer's address verified too (a journey that opens a conversation). */
export async function cast({ verified = false } = {}): Promise<Cast> {
  const admin = await firstAdmin();
  const [agent, buyer] = await Promise.all([newAgent(admin), signUp("buyer", { verified })]);
  return { admin, agent, buyer };
}

/** Close every client this process opened, so node exits (listeners hold sockets). */
export async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((app) => deleteApp(app)));
}

/** Resolve with the first snapshot of ``ref`` that ``accept`` takes, seen by a live
 * listener (as an app would see it), or fail after ``seconds`` naming ``what``. */
export function waitForDoc<T>(
  ref: DocumentReference<T>,
  accept: (snapshot: DocumentSnapshot<T>) => boolean,
  what: string,
  seconds = 60,
): Promise<DocumentSnapshot<T>> {
  const show = (s: DocumentSnapshot<T>) => `${ref.path}: ${JSON.stringify(s.data() ?? null)}`;
  return listenUntil((next, fail) => onSnapshot(ref, next, fail), accept, show, what, seconds);
}

/** The same for a query (an inbox, a conversation's messages): the first result set
 * ``accept`` takes. */
export function waitForQuery<T>(
  query: Query<T>,
  accept: (snapshot: QuerySnapshot<T>) => boolean,
  what: string,
  seconds = 60,
): Promise<QuerySnapshot<T>> {
  const show = (s: QuerySnapshot<T>) => JSON.stringify(s.docs.map((d) => [d.id, d.data()]));
  return listenUntil((next, fail) => onSnapshot(query, next, fail), accept, show, what, seconds);
}

function listenUntil<S>(
  listen: (next: (snapshot: S) => void, fail: (error: Error) => void) => () => void,
  accept: (snapshot: S) => boolean,
  show: (snapshot: S) => string,
  what: string,
  seconds: number,
): Promise<S> {
  return new Promise((resolve, reject) => {
    let last = "no snapshot yet";
    let stop = () => {};
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out after ${seconds} s waiting for ${what} (last: ${last})`));
    }, seconds * 1000);
    stop = listen(
      (snapshot) => {
        last = show(snapshot);
        if (accept(snapshot)) {
          clearTimeout(timer);
          stop();
          resolve(snapshot);
        }
      },
      (error) => {
        clearTimeout(timer);
        reject(new Error(`the listener for ${what} failed: ${error.message}`));
      },
    );
  });
}

// ---- what only the server sees (the push outbox, ...): the Firestore emulator's REST API
// with the `owner` bearer, which bypasses the rules as the Admin SDK does; clients cannot

/** A Firestore REST value as plain JSON (timestamps as ISO strings). */
type RestValue = { [kind: string]: unknown };

function plain(value: RestValue): unknown {
  if ("mapValue" in value) {
    const fields = (value.mapValue as { fields?: Record<string, RestValue> }).fields ?? {};
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, plain(v)]));
  }
  if ("arrayValue" in value) {
    return ((value.arrayValue as { values?: RestValue[] }).values ?? []).map(plain);
  }
  if ("integerValue" in value) return Number(value.integerValue);
  if ("nullValue" in value) return null;
  return Object.values(value)[0];
}

/** The documents of the collection ``collectionId`` whose ``field`` equals ``value``, as
 * the server sees them, whatever the rules say. */
export async function serverDocs(
  collectionId: string,
  field: string,
  value: string,
): Promise<Record<string, unknown>[]> {
  const url =
    `http://${emulators.firestore}/v1/projects/${emulators.project}` +
    "/databases/(default)/documents:runQuery";
  const where = { fieldFilter: { field: { fieldPath: field }, op: "EQUAL", value: { stringValue: value } } };
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: "Bearer owner", "Content-Type": "application/json" },
    body: JSON.stringify({ structuredQuery: { from: [{ collectionId }], where } }),
  });
  if (!response.ok) throw new Error(`the Firestore emulator refused the query: ${await response.text()}`);
  const rows = (await response.json()) as { document?: { fields?: Record<string, RestValue> } }[];
  return rows.flatMap((r) => (r.document ? [plain({ mapValue: r.document }) as Record<string, unknown>] : []));
}

/** Poll ``serverDocs`` until ``accept`` takes the result, or fail after ``seconds`` naming
 * ``what`` (no listener reaches server-only data). */
export async function waitForServerDocs(
  collectionId: string,
  field: string,
  value: string,
  accept: (docs: Record<string, unknown>[]) => boolean,
  what: string,
  seconds = 60,
): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const docs = await serverDocs(collectionId, field, value);
    if (accept(docs)) return docs;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${seconds} s waiting for ${what} (last: ${JSON.stringify(docs)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// ---- caps: a rate-capped create counts in the window the app last saw

/** Count ``key`` under ``cap`` in ``batch``, from the usage document as it stands (an app
 * keeps a listener on it; a journey reads it). */
export async function countCreate(
  batch: WriteBatch,
  person: Person,
  cap: "listings" | "conversations" | "messages" | "reports",
  key: string,
): Promise<void> {
  const usage = (await getDoc(usageRef(person.db, person.uid))).data() as Usage | undefined;
  countUsage(batch, person.db, person.uid, cap, key, usage?.[cap]);
}

// ---- scheduled functions: the emulators never run them, so a test does, as Cloud
// Scheduler would (the same request as pytest_firebase/schedules.py sends)

/** Run the scheduled function ``name`` once and return when it has finished. */
export async function runSchedule(name: string): Promise<void> {
  const base = `http://${emulators.functions}/${emulators.project}/us-central1`;
  // The bare name answers with every trigger key; the highest generation is the live one.
  const listing = await (await fetch(`${base}/${name}`)).text();
  const keys = [...listing.matchAll(new RegExp(`\\bus-central1-${name}-(\\d+)\\b`, "g"))];
  if (keys.length === 0) throw new Error(`the Functions emulator has no schedule ${name}`);
  const generation = Math.max(...keys.map((k) => Number(k[1])));
  const response = await fetch(`${base}/${name}-${generation}`, {
    method: "POST",
    headers: {
      "X-CloudScheduler-JobName": `firebase-schedule-${name}-us-central1`,
      "X-CloudScheduler-ScheduleTime": new Date().toISOString(),
    },
  });
  if (response.status !== 200) {
    throw new Error(`${name} did not run (${response.status}): ${await response.text()}`);
  }
}

/** Something unique to this run, for ids and addresses that must not collide. */
export function unique(label: string): string {
  counter += 1;
  return `${label}-${run}-${counter}`;
}

/** Call ``name`` as ``person``, expecting exactly ``expected`` (code and reason) back;
 * returns the whole refusal for its message, fields and other details. */
export async function refused<N extends CallableName>(
  person: Person,
  name: N,
  request: RequestOf<N>,
  expected: RefusalOf<N>,
) {
  const error = await call(person.functions, name, request).then(
    (answer) => assert.fail(`${name} answered ${JSON.stringify(answer)}`),
    (err: unknown) => err,
  );
  const refusal = callableError(error, name);
  assert.ok(refusal, `${name} failed with something other than a refusal: ${String(error)}`);
  assert.deepEqual({ code: refusal.code, reason: refusal.reason }, expected);
  return refusal;
}
