// Builds the admin console: console/src/main.ts and everything it imports (lit, the
// official firebase SDK, the generated contract) bundled by esbuild into one file in the
// Hosting root, public/console.js (gitignored), with nothing loaded from elsewhere at run
// time. Run by scripts/bootstrap.sh (a stamped step) and by the browser tests' session.
//
//   node console/build.mjs
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const firebaseJson = JSON.parse(readFileSync(join(root, "firebase.json"), "utf8"));
const firebaserc = JSON.parse(readFileSync(join(root, ".firebaserc"), "utf8"));

// The emulators' addresses as firebase.json declares them: the console shifts the ports by
// the offset of the stack that serves it (src/config.ts).
const emulators = Object.fromEntries(
  ["hosting", "auth", "firestore", "functions"].map((name) => {
    const { host, port } = firebaseJson.emulators[name];
    return [name, { host, port }];
  }),
);

await build({
  entryPoints: [join(root, "console", "src", "main.ts")],
  outfile: join(root, "public", "console.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
  define: {
    __STACK__: JSON.stringify({ project: firebaserc.projects.default, emulators }),
  },
});
