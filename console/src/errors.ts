// What an admin reads when something fails: every action's and every read's error, in
// words, with the stable reason to quote (never just "something went wrong").
import { FirebaseError } from "firebase/app";

import { callableError } from "../../contract/index.js";

/** A callable's refusal as "code (reason): message; field: issue", a read the rules
 * denied as the SDK's code and message, anything else as its message. */
export function describeError(error: unknown): string {
  const refusal = callableError(error);
  if (refusal) {
    const head = `${refusal.code}${refusal.reason ? ` (${refusal.reason})` : ""}: ${refusal.message}`;
    return [head, ...refusal.fields.map((f) => `${f.field}: ${f.message}`)].join("; ");
  }
  if (error instanceof FirebaseError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
