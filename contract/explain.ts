// Why did the rules refuse my write? In development, under the emulators only: asks the
// dev-only callable `explain_refusal` (never deployed) to name each failing check in words
// and the rule line the emulator named. Hand-written.
//
//   try {
//     await addDoc(collection(db, "listings"), draft);
//   } catch (err) {
//     const why = await explainRefusal(functions, { path, op: "create", data: draft, denial: err });
//     console.log(why.checks.map((c) => c.message).join("\n"), why.rule?.text);
//   }
import {
  arrayRemove,
  arrayUnion,
  deleteField,
  DocumentReference,
  FieldValue,
  GeoPoint,
  increment,
  serverTimestamp,
  Timestamp,
  type DocumentData,
} from "firebase/firestore";
import { httpsCallable, type Functions } from "firebase/functions";

import type { ExplainRefusalRequest, Explanation } from "./callables.js";

/** The write to explain: the document's path, how it was written (`set` without merge;
 * `updateDoc` is "update", and may use dotted field paths), what was sent, and the error
 * the write was refused with (a FirebaseError, or its message). */
export interface RefusedWrite {
  path: string;
  op: "create" | "update" | "set" | "delete";
  data?: DocumentData;
  denial?: unknown;
}

/** The answer (generated from the backend's model): `allowed` when no check failed;
 * each check's `check` is one of {@link CheckKind}; `rule` is the line the emulator
 * named in the denial, as firestore.rules has it ("rules source not found" if unreadable). */
export type { Explanation } from "./callables.js";

/** A check's stable name, to branch on ("unknown_field", "request_time_expected",
 * "transition", "not_owner", "role", "rule", ...: the generated union lists them). */
export type CheckKind = Explanation["checks"][number]["check"];

/** Ask the emulated backend why `request` was (or would be) refused, as the signed-in user
 * of `functions`. Under the emulators only: the callable does not exist in production. */
export async function explainRefusal(functions: Functions, request: RefusedWrite): Promise<Explanation> {
  const explain = httpsCallable<ExplainRefusalRequest, Explanation>(functions, "explain_refusal");
  const wire: ExplainRefusalRequest = {
    path: request.path,
    op: request.op,
    data: request.data === undefined ? null : (encode(request.data) as Record<string, unknown>),
    denial: denialText(request.denial),
  };
  return (await explain(wire)).data;
}

function denialText(denial: unknown): string | null {
  if (typeof denial === "string") return denial;
  if (denial instanceof Error) return denial.message; // FirebaseError is an Error
  return null;
}

/** A write's data in JSON, its sentinels spelled out as explain_refusal reads them. */
export function encode(value: unknown): unknown {
  if (value instanceof FieldValue) return encodeFieldValue(value);
  if (value instanceof Timestamp) return { __timestamp__: value.toDate().toISOString() };
  if (value instanceof GeoPoint) return { __geoPoint__: [value.latitude, value.longitude] };
  if (value instanceof DocumentReference) return value.path;
  if (Array.isArray(value)) return value.map(encode);
  if (value instanceof Date) return { __timestamp__: value.toISOString() };
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}

function encodeFieldValue(value: FieldValue): unknown {
  if (value.isEqual(serverTimestamp())) return { __fieldValue__: "serverTimestamp" };
  if (value.isEqual(deleteField())) return { __fieldValue__: "delete" };
  // No public way tells increment() and arrayUnion()/arrayRemove() apart or reads their
  // operand: this relies on the SDK's internals (FieldValue keeps `_methodName`, and one
  // other own property, its operand, whose minified name changes between builds). Each
  // reading is checked with the public isEqual() before it is trusted.
  const internals = value as unknown as Record<string, unknown>;
  const method = internals._methodName;
  const operand = Object.entries(internals).find(([key]) => key !== "_methodName")?.[1];
  if (method === "increment" && typeof operand === "number" && value.isEqual(increment(operand))) {
    return { __fieldValue__: "increment", by: operand };
  }
  const same = method === "arrayUnion" ? arrayUnion : arrayRemove;
  if ((method === "arrayUnion" || method === "arrayRemove") && Array.isArray(operand) && value.isEqual(same(...operand))) {
    return { __fieldValue__: method, elements: operand.map(encode) };
  }
  throw new Error(`explainRefusal cannot read ${String(method)}() in this SDK build`);
}
