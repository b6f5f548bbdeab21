//! What a service gets from the process that hosts it, and what it hands back.
//!
//! The host (`oms serve <svc>` for one service, `oms dev` for all of them) owns the event bus
//! and the shutdown token; each service's `start` connects its database, spawns its server
//! and background work on the context's task tracker and returns a [`RunningService`].

use std::{net::SocketAddr, sync::Arc};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;

use crate::{
    bus::{BusError, EventBus},
    config::{DatabaseArgs, ServerArgs},
    db::{self, DbStartError},
    outbox::{self, Outbox},
    relay::{Relay, RelayConfig},
    server::{self, ServeError, ServeOptions},
};

/// Shared by every service of one process.
#[derive(Clone)]
pub struct ServiceContext {
    /// The event bus (one in-process bus is shared by all services of `oms dev`).
    pub bus: Arc<dyn EventBus>,
    /// Cancelled on SIGTERM / Ctrl-C.
    pub shutdown: CancellationToken,
}

impl ServiceContext {
    /// A context over `bus` with a fresh shutdown token.
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self {
            bus,
            shutdown: CancellationToken::new(),
        }
    }
}

impl ServiceContext {
    /// Connects the service's database, runs its migrations and starts its outbox relay on
    /// `tasks`. When the bus keeps nothing across restarts, the outbox's retention window is
    /// re-published first (idempotent consumers skip what they already applied).
    pub async fn open_database<M: MigratorTrait>(
        &self,
        service: &'static str,
        args: &DatabaseArgs,
        tasks: &TaskTracker,
    ) -> Result<(DatabaseConnection, Outbox), StartError> {
        let mut args = args.clone();
        args.url = Some(args.url_or_default(service));
        let mut db = db::connect_and_migrate::<M>(&args).await?;
        db::measure(&mut db, service);
        let relay_config = RelayConfig::new(service);
        if !self.bus.survives_restart() {
            let retention = chrono::Duration::from_std(relay_config.retention)
                .unwrap_or_else(|_| chrono::Duration::hours(24));
            let resent = outbox::republish_since(&db, service, chrono::Utc::now() - retention)
                .await
                .map_err(|e| StartError::Config(format!("{service} outbox: {e}")))?;
            if resent > 0 {
                tracing::info!(
                    service,
                    resent,
                    "re-publishing the outbox window to the fresh in-process bus"
                );
            }
        }
        let outbox = Outbox::new();
        let relay = Relay::new(db.clone(), self.bus.clone(), outbox.clone(), relay_config);
        tasks.spawn(relay.run(self.shutdown.clone()));
        Ok((db, outbox))
    }

    /// Binds the service's listener (its default port unless configured) and serves `routes`
    /// with health for `grpc_names`; background work on `tasks` is awaited at shutdown.
    pub async fn serve(
        &self,
        service: &'static str,
        args: &ServerArgs,
        default_port: u16,
        routes: Routes,
        grpc_names: Vec<&'static str>,
        tasks: TaskTracker,
    ) -> Result<RunningService, StartError> {
        let listener = server::bind(args.listen_or(default_port)).await?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StartError::Config(format!("{service} listener: {e}")))?;
        let options = ServeOptions::from_args(args, grpc_names);
        let shutdown = self.shutdown.clone();
        let task = tokio::spawn(server::serve(listener, routes, options, shutdown));
        tracing::info!(service, address = %local_addr, "serving");
        Ok(RunningService::new(service, local_addr, task, tasks))
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its database.
    #[error(transparent)]
    Database(#[from] DbStartError),
    /// Its listener.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The event bus.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A flag or setting.
    #[error("configuration: {0}")]
    Config(String),
    /// A peer service it needs.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// Which peer.
        peer: &'static str,
        /// Why.
        reason: String,
    },
}

/// A started service: its address and the tasks to wait for at shutdown.
pub struct RunningService {
    /// The service's name (`order`, `inventory`, …).
    pub name: &'static str,
    /// Where it listens (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    server: JoinHandle<Result<(), ServeError>>,
    background: TaskTracker,
}

impl RunningService {
    /// A service serving through `server`, with background work on `background`.
    pub fn new(
        name: &'static str,
        local_addr: SocketAddr,
        server: JoinHandle<Result<(), ServeError>>,
        background: TaskTracker,
    ) -> Self {
        Self {
            name,
            local_addr,
            server,
            background,
        }
    }

    /// `http://<addr>`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Waits until the server has drained and the background work (outbox flush, consumers)
    /// has finished; call after the shutdown token is cancelled.
    pub async fn wait(self) -> Result<(), ServeError> {
        let served = match self.server.await {
            Ok(result) => result,
            Err(join_error) => {
                tracing::error!(service = self.name, %join_error, "server task failed");
                Ok(())
            }
        };
        self.background.close();
        self.background.wait().await;
        served
    }
}

/// A token cancelled on SIGTERM or Ctrl-C (a second signal is left to the default handler by
/// exiting the process from the caller).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                        let _ = ctrl_c.await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: draining calls and flushing the outbox");
        cancel.cancel();
    });
    token
}
