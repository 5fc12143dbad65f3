// contract/explain.ts on the official JS SDK, against the emulators test_explain_e2e.py
// passes in: an agent's writes the rules refuse, each explained with the SDK's own
// FirebaseError as the denial and the SDK's sentinels encoded by explainRefusal.
import assert from "node:assert/strict";

import { deleteApp, initializeApp } from "firebase/app";
import { connectAuthEmulator, createUserWithEmailAndPassword, getAuth } from "firebase/auth";
import {
  arrayUnion,
  connectFirestoreEmulator,
  doc,
  GeoPoint,
  getFirestore,
  increment,
  serverTimestamp,
  setDoc,
  setLogLevel,
  Timestamp,
  type DocumentData,
} from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions } from "firebase/functions";

import { explainRefusal, type Explanation } from "../../contract/explain.js";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through test_explain_e2e.py`);
  return value;
};
const project = env("GCLOUD_PROJECT");
const [authHost, firestoreHost, functionsHost] = [
  env("FIREBASE_AUTH_EMULATOR_HOST"),
  env("FIRESTORE_EMULATOR_HOST"),
  env("FUNCTIONS_EMULATOR_HOST"),
];
const port = (host: string): [string, number] => [host.split(":")[0]!, Number(host.split(":")[1])];

setLogLevel("error"); // the refusals below are expected

const app = initializeApp({ projectId: project, apiKey: "demo-key" });
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
const db = getFirestore(app);
connectFirestoreEmulator(db, ...port(firestoreHost));
const functions = getFunctions(app, "us-central1");
connectFunctionsEmulator(functions, ...port(functionsHost));

async function signUpAgent(): Promise<string> {
  const email = `explained-${Date.now().toString(36)}@example.com`;
  const { user } = await createUserWithEmailAndPassword(auth, email, "correct-horse-1");
  // The Auth emulator's admin API (the `owner` bearer) makes the user an agent.
  const url = `http://${authHost}/identitytoolkit.googleapis.com/v1/projects/${project}/accounts:update`;
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: "Bearer owner", "Content-Type": "application/json" },
    body: JSON.stringify({ localId: user.uid, customAttributes: JSON.stringify({ role: "agent" }) }),
  });
  assert.ok(response.ok, await response.text());
  await user.getIdToken(true);
  return user.uid;
}

function draft(uid: string): DocumentData {
  return {
    ownerId: uid,
    status: "draft",
    kind: "sale",
    propertyType: "house",
    title: "Three-bed terrace near the park",
    price: { amount: 350_000_00, currency: "GBP" },
    bedrooms: 3,
    bathrooms: 1,
    address: { line1: "12 Elm Road", city: "Leeds", postcode: "LS6 2AB", country: "GB" },
    location: { lat: 53.81, lng: -1.56 },
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
}

/** Create `data` at `path` with the SDK; it must be refused; then explain the refusal. */
async function refusedAndExplained(path: string, data: DocumentData): Promise<[string, Explanation]> {
  const denial = await setDoc(doc(db, path), data).then(
    () => assert.fail(`the rules accepted ${path}`),
    (err: unknown) => err,
  );
  assert.ok(denial instanceof Error && "code" in denial && denial.code === "permission-denied", String(denial));
  return [denial.message, await explainRefusal(functions, { path, op: "create", data, denial })];
}

function checks(answer: Explanation): string[] {
  return answer.checks.map((c) => `${c.check} ${c.field ?? "-"}: ${c.message}`);
}

async function main(): Promise<void> {
  const uid = await signUpAgent();
  const report: Record<string, unknown> = {};

  const [unknownDenial, unknown] = await refusedAndExplained("listings/js-1", { ...draft(uid), colour: "red" });
  assert.deepEqual(checks(unknown), ["unknown_field colour: colour is not a field of Listing."]);
  assert.match(unknownDenial, new RegExp(`@ L${unknown.rule?.line}\\b`));
  assert.match(unknown.rule?.text ?? "", /^allow create: if hasRole\('agent'\)/);
  report.denial = unknownDenial;

  const at = Timestamp.fromDate(new Date("2026-11-01T12:00:00Z"));
  const [, plainTime] = await refusedAndExplained("listings/js-2", { ...draft(uid), createdAt: at });
  assert.deepEqual(checks(plainTime), [
    "request_time_expected createdAt: createdAt must be serverTimestamp() (you sent a timestamp).",
  ]);

  const sentinels = {
    ...draft(uid),
    bedrooms: increment(51),
    features: arrayUnion("garden", "pool"),
    location: new GeoPoint(53.81, -1.56),
  };
  const [, transformed] = await refusedAndExplained("listings/js-3", sentinels);
  assert.deepEqual(
    transformed.checks.map((c) => [c.check, c.field]),
    [
      ["bound", "bedrooms"],
      ["type", "location"],
    ],
  );
  assert.match(transformed.checks[1]!.message, /\(you sent a geo point\)\.$/);

  report.explanations = { unknown, plainTime, transformed };
  console.log(JSON.stringify(report));
  await deleteApp(app);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
