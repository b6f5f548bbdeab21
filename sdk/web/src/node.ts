// Node entry: OMS_GATEWAY, OMS_TOKEN and OMS_SKU from the environment; prints the result as JSON.
import { runExample } from "./example.js";

const result = await runExample({
  baseUrl: process.env.OMS_GATEWAY ?? "http://127.0.0.1:50051",
  token: process.env.OMS_TOKEN ?? "",
  sku: process.env.OMS_SKU ?? "TEE",
  address: { countryCode: "DE", region: "DE-BE", lat: 52.517, lng: 13.389 },
  pushToken: "sdk-example-install",
  log: (line) => console.error(line),
});
console.log(JSON.stringify(result));
