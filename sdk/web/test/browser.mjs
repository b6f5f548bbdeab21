// Runs the example in headless Chromium (Debian's `chromium`, driven by playwright-core):
// the page loads the bundled SDK and talks gRPC-web to the gateway across origins (CORS).
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.error(`browser: ${message.text()}`));
  await page.setContent("<!doctype html><title>OMS SDK example</title>");
  await page.addScriptTag({ content: await readFile(new URL("../dist/browser.js", import.meta.url), "utf8"), type: "module" });
  await page.waitForFunction(() => typeof globalThis.runExample === "function");
  const result = await page.evaluate(
    (options) => globalThis.runExample({ ...options, log: (line) => console.log(line) }),
    {
      baseUrl: process.env.OMS_GATEWAY ?? "http://127.0.0.1:50051",
      token: process.env.OMS_TOKEN ?? "",
      sku: process.env.OMS_SKU ?? "TEE",
      address: { countryCode: "DE", region: "DE-BE", lat: 52.517, lng: 13.389 },
      pushToken: "sdk-example-browser",
    },
  );
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
