//! The production topology on one machine: every service its own `oms serve` process, each on
//! its own PostgreSQL database, over a NATS JetStream server of the test's own; plus what the
//! fault tests need to break it (kill and restart a service, NATS, or PostgreSQL).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use oms::mesh::{self, App, Identity, Operator, Protocol, Target};
use oms_platform::{
    sample,
    testing::{NatsServer, TestDatabase, free_port, namespace},
};
use oms_proto::{
    fulfillment::v1 as ful,
    mobile::v1 as mobile,
    order::v1::{self as ord, OrderStatus},
    tracking::v1::live_update::Kind,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::OmsProcess;

/// The services in start order (dependencies first).
pub const SERVICES: [&str; 5] = ["inventory", "fulfillment", "tracking", "order", "gateway"];

pub struct Topology {
    pub target: Target,
    pub nats: NatsServer,
    /// The bus namespace of this topology's streams on `nats`.
    pub namespace: String,
    processes: HashMap<&'static str, OmsProcess>,
    args: HashMap<&'static str, Vec<String>>,
    key_dir: tempfile::TempDir,
    /// Dropped with the topology (none when the test brought its own PostgreSQL).
    _databases: Vec<TestDatabase>,
}

impl Topology {
    /// Starts all five services on fresh databases of the shared PostgreSQL.
    pub async fn start() -> Self {
        let mut databases = Vec::new();
        for _ in 0..4 {
            databases.push(TestDatabase::postgres().await);
        }
        let urls = databases.iter().map(|db| db.url.clone()).collect();
        Self::start_on(urls, databases).await
    }

    /// Starts all five services on fresh databases of `postgres`, one per service and the
    /// payment ledger's own: [`PRIVATE_DATABASES`].
    pub async fn start_on_private(postgres: &PrivatePostgres) -> Self {
        let mut urls = Vec::new();
        for name in PRIVATE_DATABASES {
            urls.push(postgres.create_database(name).await);
        }
        Self::start_on(urls, Vec::new()).await
    }

    /// `urls`: inventory, fulfillment, tracking, orders and optionally the payment ledger
    /// (else it shares the order database).
    async fn start_on(urls: Vec<String>, databases: Vec<TestDatabase>) -> Self {
        let nats = NatsServer::start().await;
        let key_dir = tempfile::tempdir().unwrap();
        // Writes the dev key's JWKS for the gateway to trust.
        Identity::open(key_dir.path()).unwrap();
        let base = super::free_port_range(5);
        let url = |n: u16| format!("http://127.0.0.1:{}", base + n);
        let target = Target {
            gateway: url(0),
            order: url(1),
            inventory: url(2),
            fulfillment: url(3),
            tracking: url(4),
            key_dir: key_dir.path().to_owned(),
            protocol: Protocol::Grpc,
        };
        let namespace = namespace();
        let bus = |db: &str| {
            vec![
                "--database-url".to_owned(),
                db.to_owned(),
                "--database-max-connections".into(),
                "8".into(),
                "--nats-url".into(),
                nats.url(),
                "--bus-namespace".into(),
                namespace.clone(),
            ]
        };
        let listen = |n: u16| vec!["--listen".to_owned(), format!("127.0.0.1:{}", base + n)];
        let mut args: HashMap<&'static str, Vec<String>> = HashMap::new();
        args.insert("inventory", [listen(2), bus(&urls[0])].concat());
        args.insert(
            "fulfillment",
            [
                listen(3),
                bus(&urls[1]),
                vec!["--inventory-url".into(), target.inventory.clone()],
            ]
            .concat(),
        );
        args.insert("tracking", [listen(4), bus(&urls[2])].concat());
        args.insert(
            "order",
            [
                listen(1),
                bus(&urls[3]),
                vec![
                    "--inventory-url".into(),
                    target.inventory.clone(),
                    "--fulfillment-url".into(),
                    target.fulfillment.clone(),
                    "--max-open-orders".into(),
                    "1000".into(),
                    "--recovery-interval".into(),
                    "1s".into(),
                    "--peer-timeout".into(),
                    "1s".into(),
                    "--placement-deadline".into(),
                    "5s".into(),
                ],
                urls.get(4)
                    .map(|payments| vec!["--payments-database-url".into(), payments.clone()])
                    .unwrap_or_default(),
            ]
            .concat(),
        );
        args.insert(
            "gateway",
            [
                listen(0),
                vec![
                    "--order-url".into(),
                    target.order.clone(),
                    "--inventory-url".into(),
                    target.inventory.clone(),
                    "--tracking-url".into(),
                    target.tracking.clone(),
                    "--jwks-file".into(),
                    key_dir.path().join("dev-jwks.json").display().to_string(),
                    "--rate-per-user".into(),
                    "1000".into(),
                    "--rate-burst".into(),
                    "1000".into(),
                ],
            ]
            .concat(),
        );
        let mut topology = Self {
            target,
            nats,
            namespace,
            processes: HashMap::new(),
            args,
            key_dir,
            _databases: databases,
        };
        for service in SERVICES {
            topology.start_service(service).await;
        }
        topology
    }

    fn url(&self, service: &str) -> String {
        match service {
            "gateway" => self.target.gateway.clone(),
            "order" => self.target.order.clone(),
            "inventory" => self.target.inventory.clone(),
            "fulfillment" => self.target.fulfillment.clone(),
            _ => self.target.tracking.clone(),
        }
    }

    /// Starts (or restarts) one service and waits until it reports healthy.
    pub async fn start_service(&mut self, service: &'static str) {
        // Five processes on one machine cannot share the Prometheus port.
        let mut argv = vec!["--metrics-listen", "off", "serve", service]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        argv.extend(self.args[service].iter().cloned());
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let process = OmsProcess::spawn(&refs);
        self.processes.insert(service, process);
        let url = self.url(service);
        for _ in 0..600 {
            if healthy(&url).await {
                return;
            }
            if let Some(process) = self.processes.get_mut(service) {
                process.assert_running(service);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{service} did not become healthy at {url}");
    }

    /// SIGKILL: the service dies mid-work, as on a node failure.
    pub fn kill_service(&mut self, service: &str) {
        if let Some(mut process) = self.processes.remove(service) {
            process.kill();
        }
    }

    /// An app signed in as `user`.
    pub async fn app(&self, user: &str, protocol: Protocol) -> App {
        let identity = Identity::open(self.key_dir.path()).unwrap();
        let transport = mesh::transport(&self.target.gateway, protocol)
            .await
            .unwrap();
        identity
            .app(user, &self.target.gateway, &transport)
            .unwrap()
    }

    pub async fn operator(&self) -> Operator {
        Operator::connect(&self.target).await.unwrap()
    }
}

async fn healthy(url: &str) -> bool {
    let Ok(channel) = mesh::channel(url).await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

/// The databases of a topology on a private PostgreSQL, in `start_on` order.
pub const PRIVATE_DATABASES: [&str; 5] =
    ["inventory", "fulfillment", "tracking", "orders", "payments"];

/// A PostgreSQL server of the test's own (initdb in a temporary directory), so a test can
/// restart it, or log every statement, without disturbing the others.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Extra server settings (`name=value`), passed as `-c` options.
    settings: Vec<String>,
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server started with extra `name=value` settings.
    pub async fn start_with(settings: &[&str]) -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let settings = settings.iter().map(|s| (*s).to_owned()).collect();
        let server = Self {
            port,
            dir,
            bin,
            settings,
        };
        // PostgreSQL refuses to run as root; the Debian package's user runs it instead.
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres"]).arg(server.dir.path());
            server.run(chown);
        }
        let mut initdb = as_postgres(&server.bin.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(server.data());
        server.run(initdb);
        server.pg_ctl("start");
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log (what it prints to stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn create_database(&self, name: &str) -> String {
        oms_platform::db::create_postgres_database(&self.admin_url(), name)
            .await
            .unwrap()
    }

    /// Fast shutdown (connections cut, in-flight transactions rolled back), then start.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    fn pg_ctl(&self, action: &str) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        for setting in &self.settings {
            options.push_str(&format!(" -c {setting}"));
        }
        let mut command = as_postgres(&self.bin.join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg(action);
        self.run(command);
    }

    fn run(&self, mut command: Command) {
        let status = command.status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{command:?} failed; log: {}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .status();
    }
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|bin| Path::new(bin).join("initdb").exists())
        .expect("PostgreSQL server binaries (Debian package postgresql; scripts/test installs it)")
}

/// The bench world of the tests: SHOE only in Munich, TEE only in Hamburg (an order of both
/// splits), CAP in Munich.
pub async fn seed(operator: &mut Operator, stock: &[(&str, &str, u32)]) {
    let centers = [
        mesh::german_center("fc-munich", 48.14, 11.58, false),
        mesh::german_center("fc-hamburg", 53.55, 9.99, true),
    ];
    operator
        .seed(
            "e2e",
            &centers,
            &[("SHOE", "59.90"), ("TEE", "19.90"), ("CAP", "14.90")],
            stock,
        )
        .await
        .unwrap();
}

pub fn order_request(key: &str, lines: &[(&str, u32)]) -> mobile::PlaceOrderRequest {
    mobile::PlaceOrderRequest {
        idempotency_key: key.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| ord::OrderLineInput {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        shipping_address: Some(sample::berlin_address()),
        currency_code: "EUR".into(),
        ..Default::default()
    }
}

/// What one app saw on its stream, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// (order, status, cursor) of every status change.
    pub statuses: Vec<(String, OrderStatus, i64)>,
    /// Shipments whose courier position arrived.
    pub positions: Vec<String>,
    /// How often the app had to reconnect.
    pub reconnects: u32,
}

impl Seen {
    /// The statuses of one order in arrival order.
    pub fn of(&self, order_id: &str) -> Vec<OrderStatus> {
        self.statuses
            .iter()
            .filter(|(id, _, _)| id == order_id)
            .map(|(_, status, _)| *status)
            .collect()
    }

    /// Every (order, status) exactly once, cursors strictly rising.
    pub fn assert_exactly_once_in_order(&self) {
        let mut counts: BTreeMap<(String, i32), u32> = BTreeMap::new();
        for (order, status, _) in &self.statuses {
            *counts.entry((order.clone(), *status as i32)).or_default() += 1;
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "delivered more than once: {repeated:?}"
        );
        let cursors: Vec<i64> = self.statuses.iter().map(|s| s.2).collect();
        assert!(
            cursors.windows(2).all(|w| w[0] < w[1]),
            "cursors out of order: {cursors:?}"
        );
    }
}

/// An app following its live stream the way the SDK does: on any break it reconnects with
/// the last cursor it got, until `stop`.
pub fn follow(app: App, stop: tokio_util::sync::CancellationToken) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        let mut app = app;
        let mut cursor = "0".to_owned();
        while !stop.is_cancelled() {
            let request = mobile::SubscribeRequest {
                resume_cursor: cursor.clone(),
                watch_skus: Vec::new(),
            };
            let subscribed = tokio::select! {
                () = stop.cancelled() => break,
                subscribed = app.subscribe(request) => subscribed,
            };
            if let Ok(response) = subscribed {
                let mut stream = response.into_inner();
                loop {
                    let item = tokio::select! {
                        () = stop.cancelled() => return,
                        item = stream.message() => item,
                    };
                    let Ok(Some(item)) = item else { break };
                    let Some(update) = item.update else { continue };
                    let mut seen = shared.lock().unwrap();
                    match update.kind {
                        Some(Kind::OrderStatus(change)) => {
                            let at: i64 = update.cursor.parse().unwrap();
                            cursor = update.cursor.clone();
                            let status = change.status();
                            seen.statuses.push((change.order_id, status, at));
                        }
                        Some(Kind::Position(position)) => seen.positions.push(position.shipment_id),
                        _ => {}
                    }
                }
            }
            shared.lock().unwrap().reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    seen
}

/// Polls order-svc until the order satisfies `done`.
pub async fn wait_for_order(
    operator: &mut Operator,
    order_id: &str,
    done: impl Fn(&ord::Order) -> bool,
) -> ord::Order {
    let mut last = None;
    for _ in 0..600 {
        let request = ord::GetOrderRequest {
            order_id: order_id.into(),
            user_id: String::new(),
        };
        if let Ok(response) = operator.orders.get_order(request).await
            && let Some(order) = response.into_inner().order
        {
            if done(&order) {
                return order;
            }
            last = Some(order);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order {order_id} never got there: {last:#?}");
}

/// Polls until the order's outbound parcels are with their carriers.
pub async fn wait_for_dispatch(
    operator: &mut Operator,
    order_id: &str,
    count: usize,
) -> Vec<ful::Shipment> {
    for _ in 0..600 {
        let request = ful::ListShipmentsRequest {
            order_id: order_id.into(),
        };
        if let Ok(response) = operator.fulfillment.list_shipments(request).await {
            let outbound: Vec<_> = response
                .into_inner()
                .shipments
                .into_iter()
                .filter(|s| s.direction() == ful::ShipmentDirection::Outbound)
                .collect();
            if outbound.len() >= count {
                return outbound;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order_id} was not dispatched");
}

/// A carrier reports `status` ("picked_up", "delivered") in its own payload format.
pub async fn carrier_reports(operator: &mut Operator, shipment: &ful::Shipment, status: &str) {
    operator
        .fulfillment
        .report_carrier_update(ful::ReportCarrierUpdateRequest {
            carrier: shipment.carrier.clone(),
            payload: sample::carrier_payload(shipment, status),
        })
        .await
        .unwrap();
}

/// Waits until `check` holds for what the app saw, or fails with what it saw.
pub async fn eventually(seen: &Arc<Mutex<Seen>>, what: &str, check: impl Fn(&Seen) -> bool) {
    for _ in 0..1200 {
        if check(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never saw {what}: {:#?}", seen.lock().unwrap());
}
