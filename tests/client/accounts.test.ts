// Accounts: a sign-up gets the buyer role claim and a profile; a refused sign-up comes
// back as our code, reason and field, not as a bare auth/internal-error.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { createUserWithEmailAndPassword } from "firebase/auth";
import { getDoc } from "firebase/firestore";

import { type PrivateAccount, type Profile, signUpError } from "../../contract/index.js";
import { client, closeAll, docOf, PASSWORD, signUp, uniqueEmail } from "./support.js";

after(closeAll);

test("a new account gets the buyer claim, a public profile and a private account", async () => {
  const buyer = await signUp("buyer");

  const token = await buyer.user.getIdTokenResult();
  assert.equal(token.claims["role"], "buyer");
  const profile = await getDoc(docOf<Profile>(buyer.db, "users", buyer.uid));
  assert.equal(profile.data()?.role, "buyer");
  // The owner-only half holds the address; the public profile never does.
  const privately = docOf<PrivateAccount>(buyer.db, "users", buyer.uid, "private", "account");
  const account = await getDoc(privately);
  assert.equal(account.data()?.email, buyer.email);
  assert.equal("email" in (profile.data() ?? {}), false);
});

test("a throwaway address is refused with its code, reason and field", async () => {
  const visitor = client();

  const error = await createUserWithEmailAndPassword(
    visitor.auth,
    uniqueEmail("someone", "mailinator.com"),
    PASSWORD,
  ).then(
    () => assert.fail("the sign-up was accepted"),
    (err: unknown) => err,
  );

  const refused = signUpError(error);
  assert.ok(refused, `signUpError could not read ${String(error)}`);
  assert.equal(refused.code, "invalid-argument");
  assert.equal(refused.reason, "invalid_argument");
  assert.deepEqual(
    refused.fields.map((f) => [f.field, f.issue]),
    [["email", "disposable"]],
  );
  assert.match(refused.message, /Disposable email addresses cannot be used/);
  assert.equal(visitor.auth.currentUser, null);
});
