// Browser entry: exposes the examples to the page (the tests drive them with playwright-core).
import { runExample } from "./example.js";
import { runPasskeyExample } from "./passkeys.js";

Object.assign(globalThis, { runExample, runPasskeyExample });
