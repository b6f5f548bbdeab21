// The reference flow for app developers: open the live stream, place an order, and follow it
// until its status arrives on the stream. Runs unchanged in Node and in the browser.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { MobileOrderService } from "./gen/oms/mobile/v1/mobile_pb.js";
import { OrderStatus } from "./gen/oms/order/v1/order_pb.js";
import { DevicePlatform } from "./gen/oms/tracking/v1/tracking_pb.js";

export interface ExampleOptions {
  /** The gateway, e.g. "http://127.0.0.1:50051". */
  baseUrl: string;
  /** An OAuth2 access token (scopes orders:read orders:write). */
  token: string;
  /** What to buy. */
  sku: string;
  /** Where it goes; the gateway routes by distance, so give a location. */
  address: { countryCode: string; region: string; lat: number; lng: number };
  /** Progress lines for the console. */
  log?: (line: string) => void;
  /** This install's push token (APNs, FCM or a web push endpoint); registered when given. */
  pushToken?: string;
}

export interface ExampleResult {
  orderId: string;
  placedStatus: string;
  streamedStatuses: string[];
  /** The order's history as GetOrderTracking returns it after a restart (statuses). */
  trackedStatuses: string[];
}

/** Adds the bearer token to every call. */
const bearer = (token: string): Interceptor => (next) => async (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

export async function runExample(options: ExampleOptions): Promise<ExampleResult> {
  const log = options.log ?? (() => {});
  const transport = createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors: [bearer(options.token)] });
  const client = createClient(MobileOrderService, transport);
  const abort = new AbortController();
  // Status updates by order id, as they arrive (one may beat the PlaceOrder answer).
  const updates = new Map<string, string[]>();
  let orderId = "";
  let resolveSeen: () => void = () => {};
  const seen = new Promise<void>((resolve) => (resolveSeen = resolve));

  // One stream carries everything live; open it before acting so nothing is missed.
  const following = (async () => {
    try {
      for await (const message of client.subscribe({ resumeCursor: "" }, { signal: abort.signal })) {
        const update = message.update;
        if (update?.kind.case === "orderStatus") {
          const { orderId: id, status } = update.kind.value;
          updates.set(id, [...(updates.get(id) ?? []), OrderStatus[status]]);
          log(`stream: order ${id} is ${OrderStatus[status]} (cursor ${update.cursor})`);
          if (id === orderId) resolveSeen();
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
  })();

  // Pushes for this install, only for the statuses worth a notification.
  if (options.pushToken) {
    await client.registerDevice({ deviceToken: options.pushToken, platform: DevicePlatform.WEB, locale: (globalThis as { navigator?: { language?: string } }).navigator?.language ?? "" });
    await client.setNotificationPreferences({
      preferences: { pushEnabled: true, inAppEnabled: true, pushStatuses: [OrderStatus.SHIPPED, OrderStatus.DELIVERED] },
    });
    log(`registered this install for pushes on shipping and delivery`);
  }

  // What the shop offers near the buyer, soonest-delivered first (typos and synonyms are
  // fine; the locale picks the texts and the language analysis).
  const near = { lat: options.address.lat, lng: options.address.lng };
  const found = await client.searchProducts({ query: options.sku, locale: "en", near });
  log(`search "${options.sku}": ${found.products.length} product(s)${found.products.map((p) => `, ${p.sku} in ${p.deliveryHours.toFixed(0)} h`).join("")}`);

  // Give the stream a moment to open, then order.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const placed = await client.placeOrder({
    // A fresh key per purchase; a retry of this call reuses it (getRandomValues works in
    // insecure contexts too, unlike randomUUID).
    idempotencyKey: Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(""),
    lines: [{ sku: options.sku, quantity: 1 }],
    currencyCode: "EUR",
    shippingAddress: {
      recipient: "SDK example",
      countryCode: options.address.countryCode,
      region: options.address.region,
      location: { lat: options.address.lat, lng: options.address.lng },
    },
  });
  orderId = placed.order?.orderId ?? "";
  const placedStatus = OrderStatus[placed.order?.status ?? 0];
  log(`placed order ${orderId}: ${placedStatus}, total ${placed.order?.totals?.total?.amount} ${placed.order?.currencyCode}`);
  if (updates.has(orderId)) resolveSeen();
  const fetched = await client.getOrder({ orderId });
  log(`get: ${fetched.order?.lines.length} line(s), ${fetched.order?.shipments.length} shipment(s)`);

  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no status update on the stream within 15 s")), 15_000));
  await Promise.race([seen, timeout]);
  abort.abort();
  await following;

  // What an app restarted later reads instead of the stream: the order's whole history
  // (status timeline, each parcel's breadcrumb track and ETA).
  const tracking = await client.getOrderTracking({ orderId });
  const trackedStatuses = tracking.timeline.filter((entry) => entry.status !== OrderStatus.UNSPECIFIED).map((entry) => OrderStatus[entry.status]);
  log(`tracking: ${tracking.timeline.length} timeline entries, ${tracking.shipments.length} shipment(s)`);
  return { orderId, placedStatus, streamedStatuses: updates.get(orderId) ?? [], trackedStatuses };
}
