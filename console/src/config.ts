// Which emulators the console talks to: those of the stack whose Hosting emulator serves
// it. Every port of a stack is firebase.json's port plus one offset
// (PYTEST_FIREBASE_PORT_OFFSET: `make dev` runs at 0, each test run at its own), so the
// offset of the page's own port from firebase.json's Hosting port is the offset of them all.

interface Address {
  host: string;
  port: number;
}

/** What build.mjs read from firebase.json and .firebaserc. */
declare const __STACK__: {
  project: string;
  emulators: Record<"hosting" | "auth" | "firestore" | "functions", Address>;
};

export interface Stack {
  project: string;
  offset: number;
  auth: Address;
  firestore: Address;
  functions: Address;
}

/** The stack serving ``location`` (a page on another port than Hosting's is at offset 0). */
export function stackOf(location: Location): Stack {
  const { project, emulators } = __STACK__;
  const served = Number(location.port || 0);
  const offset = served > 0 ? served - emulators.hosting.port : 0;
  const shifted = ({ host, port }: Address): Address => ({ host, port: port + offset });
  return {
    project,
    offset,
    auth: shifted(emulators.auth),
    firestore: shifted(emulators.firestore),
    functions: shifted(emulators.functions),
  };
}
