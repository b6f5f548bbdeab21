// The passkey step-up in headless Chromium with its virtual authenticator (DevTools protocol
// WebAuthn domain: ctap2, internal transport, user verification on), through the SDK and the
// gateway over gRPC-web: navigator.credentials.create enrols, a high-value order is held,
// navigator.credentials.get answers its challenge, the order arrives CONFIRMED on the stream.
// WebAuthn needs a secure context on the relying party's domain, so the page is opened at the
// gateway's own http://localhost origin (its calls are then same-origin).
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const gateway = new URL(process.env.OMS_GATEWAY ?? "http://127.0.0.1:50051");
const origin = `http://localhost:${gateway.port}`;
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.error(`browser: ${message.text()}`));
  // The page itself is served here; its gRPC-web calls go to the gateway.
  await page.route(`${origin}/`, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>OMS passkey example</title>" }),
  );
  await page.goto(`${origin}/`);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await page.addScriptTag({ content: await readFile(new URL("../dist/browser.js", import.meta.url), "utf8"), type: "module" });
  await page.waitForFunction(() => typeof globalThis.runPasskeyExample === "function");
  const result = await page.evaluate(
    (options) => globalThis.runPasskeyExample({ ...options, log: (line) => console.log(line) }),
    {
      baseUrl: origin,
      token: process.env.OMS_TOKEN ?? "",
      sku: process.env.OMS_SKU ?? "WATCH",
      address: { countryCode: "DE", region: "DE-BE", lat: 52.517, lng: 13.389 },
    },
  );
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
