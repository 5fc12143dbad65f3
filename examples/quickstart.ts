// An app developer's first ten minutes, runnable: after `make dev` prints "Dev stack
// ready.", run `make quickstart` (it compiles this file with tsc and runs it with node).
// It connects to the emulators, signs in as the seeded agent, writes a listing with the
// generated types, uploads its photo, listens to it go live, and calls a callable. The
// README shows it.
import { readFileSync } from "node:fs";

import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInWithEmailAndPassword } from "firebase/auth";
import {
  collection,
  connectFirestoreEmulator,
  doc,
  getDoc,
  getFirestore,
  onSnapshot,
  serverTimestamp,
  updateDoc,
  writeBatch,
} from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions } from "firebase/functions";

import {
  call,
  callableError,
  countUsage,
  type Listing,
  type ListingCreate,
  type ListingUpdate,
  type Usage,
  usageRef,
} from "../contract/index.js";

// 1. Connect to the emulators (make dev's addresses; the tests pass their own).
const env = process.env;
const [firestoreHost, firestorePort] = (env.FIRESTORE_EMULATOR_HOST ?? "127.0.0.1:8080").split(":");
const [functionsHost, functionsPort] = (env.FUNCTIONS_EMULATOR_HOST ?? "127.0.0.1:5001").split(":");
const project = env.GCLOUD_PROJECT ?? "demo-marketplace";
const app = initializeApp({ projectId: project, apiKey: "demo-key" }); // any key: emulators
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${env.FIREBASE_AUTH_EMULATOR_HOST ?? "127.0.0.1:9099"}`, {
  disableWarnings: true,
});
const db = getFirestore(app);
connectFirestoreEmulator(db, firestoreHost!, Number(firestorePort));
const functions = getFunctions(app);
connectFunctionsEmulator(functions, functionsHost!, Number(functionsPort));

async function main(): Promise<void> {
  // 2. Sign in as a seeded user: agent@ is a verified agent, so a submission goes live.
  const agent = ["agent@homefront.test", "seed-agent-pass"] as const;
  const { user } = await signInWithEmailAndPassword(auth, ...agent);
  console.log(`signed in as ${user.email} (role: ${(await user.getIdTokenResult()).claims.role})`);

  // 3. Write a draft with the generated types: a wrong field, a missing serverTimestamp()
  //    or a status other than "draft" would not compile. A listing counts against the cap
  //    of 50 a day, so the same batch counts it in the user's usage document.
  const listing = doc(collection(db, "listings"));
  const draft: ListingCreate = {
    ownerId: user.uid,
    status: "draft",
    kind: "sale",
    propertyType: "flat",
    title: "Quickstart flat by the canal",
    price: { amount: 42_500_000, currency: "GBP" },
    bedrooms: 2,
    bathrooms: 1,
    address: { line1: "12 Wharf Road", city: "London", postcode: "N1 7GR", country: "GB" },
    location: { lat: 51.5326, lng: -0.0952 },
    createdAt: serverTimestamp(),
    updatedAt: serverTimestamp(),
  };
  const usage = (await getDoc(usageRef(db, user.uid))).data() as Usage | undefined;
  const batch = writeBatch(db);
  batch.set(listing, draft);
  countUsage(batch, db, user.uid, "listings", listing.id, usage?.listings);
  await batch.commit();
  console.log(`draft written: listings/${listing.id}`);

  // 4. Add a photo (the review wants one): ask for an upload slot, PUT the bytes to its
  //    signed URL with exactly its headers; a function checks, strips and resizes it and
  //    records it on the listing.
  const slot = await call(functions, "request_photo_upload", {
    target: "listing",
    listingId: listing.id,
    contentType: "image/jpeg",
  });
  const bytes = readFileSync("examples/house.jpg");
  const put = await fetch(slot.url, { method: slot.method, headers: slot.headers, body: bytes });
  console.log(`photo uploaded (${put.status}); waiting for it to be processed`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no processed photo in 60 s")), 60_000);
    const stop = onSnapshot(listing, (snap) => {
      const photo = (snap.data() as Listing | undefined)?.photos?.find((p) => p.id === slot.photoId);
      if (photo) {
        console.log(`photo ready: ${photo.sizes.map((s) => s.width).join(", ")} px wide`);
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
  });

  // 5. Listen to it, then submit it: the review function publishes it.
  const live = new Promise<Listing>((resolve, reject) => {
    const late = () => reject(new Error("the listing did not go live in 60 s"));
    const timer = setTimeout(late, 60_000);
    const stop = onSnapshot(listing, (snap) => {
      const data = snap.data() as Listing | undefined;
      const why = data?.rejectionReason ? `: ${data.rejectionReason}` : "";
      console.log(`listing is ${data?.status}${why}`);
      if (data?.status === "active" || data?.status === "rejected") {
        clearTimeout(timer);
        stop();
        if (data.status === "active") resolve(data);
        else reject(new Error(`the review rejected it: ${data.rejectionReason}`));
      }
    });
  });
  const submit: ListingUpdate = { status: "pending_review", updatedAt: serverTimestamp() };
  await updateDoc(listing, submit);
  const published = await live;
  console.log(`live with geohash ${published.geohash}`);

  // 6. Call a callable, typed: request and response come from the contract.
  const page = await call(functions, "search_near", {
    lat: 51.5326,
    lng: -0.0952,
    radiusKm: 1,
    kind: "sale",
  });
  const found = page.results.some((result) => result.id === listing.id);
  console.log(`search_near found ${found ? "it" : "nothing"}`);

  // 7. A refusal, read as our backend words it.
  try {
    await call(functions, "search_near", { lat: 91, lng: 0, radiusKm: 1 });
  } catch (err) {
    const refusal = callableError(err, "search_near");
    console.log(`refused: ${refusal?.code} on ${refusal?.fields.map((f) => f.field).join(", ")}`);
  }
}

main().then(
  () => process.exit(0), // the SDK keeps its connections open
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
