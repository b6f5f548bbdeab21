// Passkeys: the biometric step-up of high-value orders. The app enrols a passkey once
// (navigator.credentials.create: the device's biometric or PIN unlocks a key that never leaves
// it); an order above the high-value threshold comes back REQUIRES_VERIFICATION, the app asks
// for the order's challenge and answers it with navigator.credentials.get, and the order is
// CONFIRMED. Browser only (WebAuthn); native apps use the platform's passkey API with the same
// JSON.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { MobileOrderService } from "./gen/oms/mobile/v1/mobile_pb.js";
import { OrderStatus } from "./gen/oms/order/v1/order_pb.js";

type Mobile = Client<typeof MobileOrderService>;

// WebAuthn Level 3's JSON helpers (Chromium 129+, Firefox 119+, Safari 18.4+), which older DOM
// typings do not know yet: options from the server's JSON, the authenticator's answer as JSON.
// (Looked up when used: PublicKeyCredential exists only in secure contexts.)
const webAuthnJson = () =>
  PublicKeyCredential as unknown as {
    parseCreationOptionsFromJSON(options: unknown): PublicKeyCredentialCreationOptions;
    parseRequestOptionsFromJSON(options: unknown): PublicKeyCredentialRequestOptions;
  };
type JsonCredential = PublicKeyCredential & { toJSON(): unknown };

/** Enrols a passkey on this device; returns its credential id. */
export async function enrolPasskey(client: Mobile, name: string): Promise<string> {
  const begun = await client.beginPasskeyRegistration({ displayName: name });
  const options = webAuthnJson().parseCreationOptionsFromJSON(JSON.parse(begun.creationOptionsJson).publicKey);
  const credential = (await navigator.credentials.create({ publicKey: options })) as JsonCredential;
  const finished = await client.finishPasskeyRegistration({
    registrationId: begun.registrationId,
    credentialJson: JSON.stringify(credential.toJSON()),
    name,
  });
  return finished.passkey?.credentialId ?? "";
}

/** Answers a held order's challenge with this device's passkey; returns the order's status. */
export async function verifyHeldOrder(client: Mobile, orderId: string, idempotencyKey: string): Promise<OrderStatus> {
  const begun = await client.beginOrderVerification({ orderId });
  const options = webAuthnJson().parseRequestOptionsFromJSON(JSON.parse(begun.requestOptionsJson).publicKey);
  const assertion = (await navigator.credentials.get({ publicKey: options })) as JsonCredential;
  const verified = await client.verifyOrder({ orderId, assertionJson: JSON.stringify(assertion.toJSON()), idempotencyKey });
  return verified.order?.status ?? OrderStatus.UNSPECIFIED;
}

export interface PasskeyExampleOptions {
  baseUrl: string;
  token: string;
  /** A SKU priced above the high-value threshold. */
  sku: string;
  address: { countryCode: string; region: string; lat: number; lng: number };
  log?: (line: string) => void;
}

export interface PasskeyExampleResult {
  credentialId: string;
  placedStatus: string;
  verifiedStatus: string;
  streamedStatuses: string[];
}

const bearer = (token: string): Interceptor => (next) => async (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

const randomKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

/** Enrol, place a high-value order, verify it with the passkey, see it CONFIRMED on the stream. */
export async function runPasskeyExample(options: PasskeyExampleOptions): Promise<PasskeyExampleResult> {
  const log = options.log ?? (() => {});
  const client = createClient(MobileOrderService, createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors: [bearer(options.token)] }));
  const credentialId = await enrolPasskey(client, "this browser");
  log(`enrolled passkey ${credentialId}`);

  const abort = new AbortController();
  const streamed: string[] = [];
  let orderId = "";
  let resolveConfirmed: () => void = () => {};
  const confirmed = new Promise<void>((resolve) => (resolveConfirmed = resolve));
  const following = (async () => {
    try {
      for await (const message of client.subscribe({ resumeCursor: "" }, { signal: abort.signal })) {
        const update = message.update;
        if (update?.kind.case === "orderStatus" && update.kind.value.orderId === orderId) {
          streamed.push(OrderStatus[update.kind.value.status]);
          if (update.kind.value.status === OrderStatus.CONFIRMED) resolveConfirmed();
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));

  const placed = await client.placeOrder({
    idempotencyKey: randomKey(),
    lines: [{ sku: options.sku, quantity: 1 }],
    currencyCode: "EUR",
    shippingAddress: {
      recipient: "SDK passkey example",
      countryCode: options.address.countryCode,
      region: options.address.region,
      location: { lat: options.address.lat, lng: options.address.lng },
    },
  });
  orderId = placed.order?.orderId ?? "";
  const placedStatus = OrderStatus[placed.order?.status ?? 0];
  log(`placed ${orderId}: ${placedStatus} (${placed.order?.statusReason})`);
  const verifiedStatus = OrderStatus[await verifyHeldOrder(client, orderId, randomKey())];
  log(`verified with the passkey: ${verifiedStatus}`);

  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no CONFIRMED on the stream within 15 s")), 15_000));
  await Promise.race([confirmed, timeout]);
  abort.abort();
  await following;
  return { credentialId, placedStatus, verifiedStatus, streamedStatuses: streamed };
}
