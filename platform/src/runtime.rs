//! What a service gets from the process that hosts it, and what it hands back.
//!
//! The host (`oms serve <svc>` for one service, `oms dev` for all of them) owns the event bus
//! and the shutdown token; each service's `start` connects its database, spawns its server
//! and background work on the context's task tracker and returns a [`RunningService`].

use std::{net::SocketAddr, sync::Arc};

use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    bus::{BusError, EventBus},
    db::DbStartError,
    server::ServeError,
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
