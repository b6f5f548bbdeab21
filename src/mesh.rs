//! Talking to a running mesh the way its users and operators do: apps call the public API
//! through the gateway (gRPC or gRPC-web, with a bearer token); operators seed centers,
//! catalog and stock through the services' internal APIs. Used by `oms bench` and by the
//! end-to-end tests, so both drive the mesh over the same wire paths.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use oms_platform::sample;
use oms_proto::{
    fulfillment::v1::{self as ful, fulfillment_service_client::FulfillmentServiceClient},
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    mobile::v1::mobile_order_service_client::MobileOrderServiceClient,
    order::v1::{self as ord, order_service_client::OrderServiceClient},
    tracking::v1::tracking_service_client::TrackingServiceClient,
};
use tonic::{
    Request, Status,
    body::Body,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint, Uri},
};
use tower::{BoxError, ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

/// The wire protocol apps use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// gRPC over HTTP/2 (native apps).
    Grpc,
    /// gRPC-web over HTTP/1.1 (browsers, web views).
    GrpcWeb,
}

/// Where the mesh is: `oms dev`'s ports unless told otherwise.
#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct Target {
    /// The gateway (public API).
    #[arg(
        long,
        env = "OMS_BENCH_GATEWAY",
        default_value = "http://127.0.0.1:50051"
    )]
    pub gateway: String,
    /// order-svc, for seeding prices and direct calls.
    #[arg(
        long,
        env = "OMS_BENCH_ORDER",
        default_value = "http://127.0.0.1:50052"
    )]
    pub order: String,
    /// inventory-svc, for seeding stock and auditing it.
    #[arg(
        long,
        env = "OMS_BENCH_INVENTORY",
        default_value = "http://127.0.0.1:50053"
    )]
    pub inventory: String,
    /// fulfillment-svc, for seeding centers and courier updates.
    #[arg(
        long,
        env = "OMS_BENCH_FULFILLMENT",
        default_value = "http://127.0.0.1:50054"
    )]
    pub fulfillment: String,
    /// tracking-svc, where couriers report GPS.
    #[arg(
        long,
        env = "OMS_BENCH_TRACKING",
        default_value = "http://127.0.0.1:50055"
    )]
    pub tracking: String,
    /// Directory of the dev signing key the gateway trusts (`oms dev` keeps it in .oms).
    #[arg(long = "key-dir", env = "OMS_DATA_DIR", default_value = ".oms")]
    pub key_dir: PathBuf,
    /// How apps talk to the gateway.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
}

/// A gRPC transport of either protocol, so one client type serves both.
pub type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A connection failure of either transport. A named type rather than a boxed error: async
/// code over a boxed error type trips the compiler's higher-ranked lifetime checks.
#[derive(Debug)]
pub struct TransportError(BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// A connection to `url` in `protocol`: one HTTP/2 connection, or a pool of HTTP/1.1 ones.
pub async fn transport(url: &str, protocol: Protocol) -> anyhow::Result<Transport> {
    match protocol {
        Protocol::Grpc => {
            let channel = channel(url).await?;
            Ok(BoxCloneSyncService::new(
                channel.map_err(|e| TransportError(e.into())),
            ))
        }
        Protocol::GrpcWeb => {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client = HttpClient::builder(TokioExecutor::new()).build(connector);
            let service = ServiceBuilder::new()
                .layer(tonic_web::GrpcWebClientLayer::new())
                .service(client)
                .map_response(|response| response.map(Body::new))
                .map_err(|e| TransportError(e.into()));
            Ok(BoxCloneSyncService::new(service))
        }
    }
}

/// One HTTP/2 connection to a service.
pub async fn channel(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))
}

/// Adds the app's bearer token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The public API as one signed-in app sees it.
pub type App = MobileOrderServiceClient<InterceptedService<Transport, Bearer>>;

/// Mints tokens with the dev key, as the identity provider would for signed-in users.
pub struct Identity {
    key: oms_gateway::dev_key::DevKey,
}

impl Identity {
    /// The dev key in `dir` (created if missing, as `oms dev` does).
    pub fn open(dir: &std::path::Path) -> anyhow::Result<Self> {
        let key = oms_gateway::dev_key::ensure(dir).map_err(anyhow::Error::msg)?;
        Ok(Self { key })
    }

    /// An app signed in as `user` with read and write scopes, over `transport`.
    pub fn app(&self, user: &str, gateway: &str, transport: &Transport) -> anyhow::Result<App> {
        let token = self
            .key
            .mint(
                user,
                "orders:read orders:write",
                Duration::from_secs(4 * 3600),
            )
            .map_err(anyhow::Error::msg)?;
        let bearer = format!("Bearer {token}").parse().context("token header")?;
        let origin: Uri = gateway.parse().context("gateway URL")?;
        Ok(MobileOrderServiceClient::with_origin(
            InterceptedService::new(transport.clone(), Bearer(bearer)),
            origin,
        ))
    }
}

/// The services' internal APIs, as operators and couriers reach them.
#[derive(Clone)]
pub struct Operator {
    pub orders: OrderServiceClient<Channel>,
    pub inventory: InventoryServiceClient<Channel>,
    pub fulfillment: FulfillmentServiceClient<Channel>,
    pub tracking: TrackingServiceClient<Channel>,
}

impl Operator {
    /// Connects to every service of `target`.
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        Ok(Self {
            orders: OrderServiceClient::new(channel(&target.order).await?),
            inventory: InventoryServiceClient::new(channel(&target.inventory).await?),
            fulfillment: FulfillmentServiceClient::new(channel(&target.fulfillment).await?),
            tracking: TrackingServiceClient::new(channel(&target.tracking).await?),
        })
    }

    /// Creates centers, SKUs with prices, and stock given as (sku, center, units). Receipts
    /// are keyed by `run`, so seeding twice with the same run adds nothing.
    pub async fn seed(
        &mut self,
        run: &str,
        centers: &[ful::FulfillmentCenter],
        skus: &[(&str, &str)],
        stock: &[(&str, &str, u32)],
    ) -> anyhow::Result<()> {
        for center in centers {
            let center = Some(center.clone());
            self.fulfillment
                .upsert_center(ful::UpsertCenterRequest { center })
                .await
                .context("upsert center")?;
        }
        for (sku, price) in skus {
            let definition = inv::Sku {
                sku: (*sku).into(),
                name: (*sku).into(),
                weight_grams: 700,
                hs_code: "640399".into(),
                origin_country: "PT".into(),
                low_stock_threshold: 0,
            };
            self.inventory
                .upsert_sku(inv::UpsertSkuRequest {
                    sku: Some(definition),
                })
                .await
                .context("upsert SKU")?;
            let price = ord::Price {
                sku: (*sku).into(),
                name: format!("The {sku}"),
                unit_price: sample::eur(price),
            };
            self.orders
                .upsert_price(ord::UpsertPriceRequest { price: Some(price) })
                .await
                .context("upsert price")?;
        }
        for (sku, center, units) in stock {
            self.receive(run, sku, center, *units).await?;
        }
        Ok(())
    }

    /// Receives stock, waiting for a new center to become a stock location (it travels
    /// from fulfillment to inventory over the bus).
    async fn receive(
        &mut self,
        run: &str,
        sku: &str,
        center: &str,
        units: u32,
    ) -> anyhow::Result<()> {
        let mut last_error = None;
        for _ in 0..200 {
            let request = inv::ReceiveRequest {
                sku: sku.into(),
                location_id: center.into(),
                quantity: units,
                reason: "seed".into(),
                idempotency_key: format!("seed-{run}-{sku}-{center}"),
            };
            match self.inventory.receive(request).await {
                Ok(_) => return Ok(()),
                Err(status) => last_error = Some(status),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{center} never became a stock location: {last_error:?}")
    }

    /// (on hand, reserved) of a SKU at a location.
    pub async fn level(&mut self, sku: &str, location: &str) -> anyhow::Result<(i64, i64)> {
        let response = self
            .inventory
            .get_availability(inv::GetAvailabilityRequest {
                skus: vec![sku.into()],
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(response
            .items
            .iter()
            .flat_map(|item| &item.locations)
            .find(|level| level.location_id == location)
            .map(|level| (level.on_hand, level.reserved))
            .unwrap_or_default())
    }

    /// Every mismatch the inventory ledger audit finds (empty when the books balance).
    pub async fn audit(&mut self) -> anyhow::Result<Vec<String>> {
        let report = self
            .inventory
            .audit_inventory(inv::AuditInventoryRequest::default())
            .await?
            .into_inner();
        Ok(report.mismatches.iter().map(|m| format!("{m:?}")).collect())
    }
}

/// The sample German center with room for any volume, so the bench's and the end-to-end
/// tests' loads never move surge prices.
pub fn german_center(id: &str, lat: f64, lng: f64, express_only: bool) -> ful::FulfillmentCenter {
    ful::FulfillmentCenter {
        daily_capacity: 1_000_000,
        ..sample::german_center(id, lat, lng, express_only)
    }
}

/// The world the load generator and the statement budget test order from: two centers,
/// three SKUs, and a fixed mix of carts.
pub mod bench_world {
    use oms_proto::order::v1 as ord;

    use super::{Operator, german_center};

    /// Shoes: only in Munich.
    pub const SHOE: &str = "BENCH-SHOE";
    /// Tees: only in Hamburg.
    pub const TEE: &str = "BENCH-TEE";
    /// Caps: in both centers.
    pub const CAP: &str = "BENCH-CAP";
    /// The southern center.
    pub const MUNICH: &str = "bench-munich";
    /// The northern center.
    pub const HAMBURG: &str = "bench-hamburg";

    /// Two centers and three SKUs with plenty of stock; seeding again adds nothing.
    pub async fn seed(operator: &mut Operator) -> anyhow::Result<()> {
        let centers = [
            german_center(MUNICH, 48.14, 11.58, false),
            german_center(HAMBURG, 53.55, 9.99, false),
        ];
        let skus = [(SHOE, "59.90"), (TEE, "19.90"), (CAP, "14.90")];
        let stock = [
            (SHOE, MUNICH, 1_000_000),
            (TEE, HAMBURG, 1_000_000),
            (CAP, MUNICH, 1_000_000),
            (CAP, HAMBURG, 1_000_000),
        ];
        operator.seed("bench", &centers, &skus, &stock).await
    }

    /// The `i`-th cart of the mix: half one cap, a quarter one pair of shoes, a quarter split
    /// over both centers (shoes and a tee).
    pub fn cart(i: usize) -> Vec<ord::OrderLineInput> {
        let line = |sku: &str| ord::OrderLineInput {
            sku: sku.into(),
            quantity: 1,
        };
        match i % 4 {
            0 | 1 => vec![line(CAP)],
            2 => vec![line(SHOE)],
            _ => vec![line(SHOE), line(TEE)],
        }
    }

    #[cfg(test)]
    mod tests {
        use super::cart;

        #[test]
        fn a_quarter_of_the_carts_split_over_both_centers() {
            let split = (0..400).filter(|&i| cart(i).len() == 2).count();
            assert_eq!(split, 100);
            assert!((0..400).all(|i| !cart(i).is_empty()));
        }
    }
}
