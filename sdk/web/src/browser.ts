// Browser entry: exposes the example to the page (the test drives it with playwright-core).
import { runExample } from "./example.js";

(globalThis as unknown as { runExample: typeof runExample }).runExample = runExample;
