//! Test support shared by every crate's tests (feature `testing`): real PostgreSQL databases,
//! a private nats-server per test, and a bus that can be switched off.
//!
//! Each test gets its own database (`oms_test_<uuid>`, dropped afterwards) and its own NATS
//! server or bus namespace, so tests run in parallel against real services. Set-up failures
//! panic with what to fix: this is test code, failing loudly is its job.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    net::TcpListener as StdTcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use futures::StreamExt;
use oms_proto::events::v1::Envelope;

use crate::bus::{BusError, ConsumerSpec, DeliveryStream, EventBus, PublishAck};

/// Where the test PostgreSQL is (`OMS_TEST_POSTGRES_URL`, default the local trust setup).
pub fn postgres_admin_url() -> String {
    std::env::var("OMS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test; dropped when this is dropped.
pub struct TestDatabase {
    /// Connection URL of the fresh database.
    pub url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A fresh, empty PostgreSQL database.
    pub async fn postgres() -> Self {
        let name = format!("oms_test_{}", uuid::Uuid::new_v4().simple());
        let url = crate::db::create_postgres_database(&postgres_admin_url(), &name)
            .await
            .expect("create a test database (is PostgreSQL running? scripts/test starts it)");
        Self {
            url,
            name: Some(name),
            _dir: None,
        }
    }

    /// A fresh SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            url,
            name: None,
            _dir: Some(dir),
        }
    }

    /// SQLite or PostgreSQL by name (`"sqlite"` / `"postgres"`), for tests run on both.
    pub async fn of_kind(kind: &str) -> Self {
        match kind {
            "postgres" => Self::postgres().await,
            _ => Self::sqlite(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        // Dropping needs async I/O, and Drop cannot await: do it on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let _ = crate::db::drop_postgres_database(&postgres_admin_url(), &name).await;
            });
        });
        let _ = dropped.join();
    }
}

/// A nats-server with JetStream of this test's own, on a free loopback port; killed on drop.
pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = free_port();
        let store = tempfile::tempdir().expect("temporary directory");
        let mut server = Self {
            port,
            store,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its JetStream files stay).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same files.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Starts it again on the same port with its files gone: every stream is lost.
    pub async fn restart_empty(&mut self) {
        self.stop();
        self.store = tempfile::tempdir().expect("temporary directory");
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (is it installed? scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "nats-server did not listen on port {} within 5 s",
            self.port
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("OMS_NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let system = PathBuf::from("/usr/sbin/nats-server");
    if system.exists() {
        system
    } else {
        PathBuf::from("nats-server")
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A bus namespace of its own for one test.
pub fn namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Wraps a bus so a test can take it away and bring it back (an outage of the in-process bus,
/// which has no server to stop). While down, publishes and subscriptions fail and open
/// consumer streams end, as they do when NATS goes away.
#[derive(Clone)]
pub struct SwitchableBus {
    inner: Arc<dyn EventBus>,
    up: Arc<AtomicBool>,
}

impl SwitchableBus {
    /// Wraps `inner`, initially up.
    pub fn new(inner: Arc<dyn EventBus>) -> Self {
        Self {
            inner,
            up: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Takes the bus away or brings it back.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), BusError> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(BusError::Unavailable("switched off by the test".into()))
        }
    }
}

#[async_trait]
impl EventBus for SwitchableBus {
    async fn ensure_streams(&self) -> Result<(), BusError> {
        self.check()?;
        self.inner.ensure_streams().await
    }

    async fn publish(&self, envelope: &Envelope) -> Result<PublishAck, BusError> {
        self.check()?;
        self.inner.publish(envelope).await
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<DeliveryStream, BusError> {
        self.check()?;
        let up = self.up.clone();
        let stream = self.inner.consume(spec).await?;
        // Poll the switch between deliveries so an idle stream also ends when switched off.
        let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
            Duration::from_millis(20),
        ))
        .map(|_| None);
        let merged = futures::stream::select(stream.map(Some), ticks);
        Ok(Box::pin(
            merged
                .take_while(move |_| futures::future::ready(up.load(Ordering::SeqCst)))
                .filter_map(futures::future::ready),
        ))
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn survives_restart(&self) -> bool {
        self.inner.survives_restart()
    }
}
