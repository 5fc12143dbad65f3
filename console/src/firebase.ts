// The console's one Firebase app, on the emulators of the stack that serves the page.
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import {
  collection,
  type CollectionReference,
  connectFirestoreEmulator,
  doc,
  type DocumentData,
  type DocumentReference,
  getFirestore,
} from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions } from "firebase/functions";

import { stackOf } from "./config.js";

export const stack = stackOf(window.location);

// apiKey is required by Auth's SDK; the emulator accepts any.
const app = initializeApp({ projectId: stack.project, apiKey: "demo-console-key" });

export const auth = getAuth(app);
connectAuthEmulator(auth, `http://${stack.auth.host}:${stack.auth.port}`, {
  disableWarnings: true,
});

export const db = getFirestore(app);
connectFirestoreEmulator(db, stack.firestore.host, stack.firestore.port);

export const functions = getFunctions(app, "us-central1");
connectFunctionsEmulator(functions, stack.functions.host, stack.functions.port);

/** The collection at ``path`` as the contract's type ``T``. */
export function collectionOf<T extends DocumentData>(path: string, ...segments: string[]) {
  return collection(db, path, ...segments) as CollectionReference<T, T>;
}

/** The document at ``path`` as the contract's type ``T``. */
export function docOf<T extends DocumentData>(path: string, ...segments: string[]) {
  return doc(db, path, ...segments) as DocumentReference<T, T>;
}
