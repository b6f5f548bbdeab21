//! Configuration shared by every service: flags with `OMS_*` environment fallbacks (clap).
//!
//! Each service composes these groups with `#[command(flatten)]` and adds its own peers and
//! tuning, so `oms serve <svc> --help` documents everything a Deployment can set.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Where a service keeps its state.
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`;
    /// default: a SQLite file under `./.oms/`.
    #[arg(long = "database-url", env = "OMS_DATABASE_URL")]
    pub url: Option<String>,
    /// Connection pool size (PostgreSQL; SQLite always uses one writer).
    #[arg(
        long = "database-max-connections",
        env = "OMS_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
    /// How long to wait for a pooled connection.
    #[arg(long = "database-acquire-timeout", env = "OMS_DATABASE_ACQUIRE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub acquire_timeout: Duration,
}

impl DatabaseArgs {
    /// Defaults for a URL (what `oms dev` and tests use).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl DatabaseArgs {
    /// The configured URL, or the SQLite file `./.oms/<service>.db`.
    pub fn url_or_default(&self, service: &str) -> String {
        self.url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}/{service}.db", default_data_dir().display()))
    }
}

/// Which event bus to use.
#[derive(clap::Args, Debug, Clone)]
pub struct BusArgs {
    /// NATS server URL (JetStream); without it the in-process bus is used, which only
    /// connects services running in the same process (`oms dev`).
    #[arg(long = "nats-url", env = "OMS_NATS_URL")]
    pub nats_url: Option<String>,
    /// Prefix for subjects and stream names, so several meshes (or tests) share one NATS.
    #[arg(long = "bus-namespace", env = "OMS_BUS_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// JetStream stream replicas (3 in production).
    #[arg(
        long = "stream-replicas",
        env = "OMS_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub stream_replicas: usize,
    /// How long events stay in the streams.
    #[arg(long = "stream-max-age", env = "OMS_STREAM_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub stream_max_age: Duration,
    /// How long to wait for NATS at start before giving up with an error.
    #[arg(long = "nats-connect-timeout", env = "OMS_NATS_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl Default for BusArgs {
    /// The in-process bus with a week of retention.
    fn default() -> Self {
        Self {
            nats_url: None,
            namespace: String::new(),
            stream_replicas: 1,
            stream_max_age: Duration::from_secs(7 * 86_400),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Log output.
#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// `pretty` for people, `json` for log pipelines.
    #[arg(long = "log-format", env = "OMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,oms_inventory_svc=debug`.
    #[arg(long = "log", env = "OMS_LOG", default_value = "info", global = true)]
    pub log_filter: String,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The gRPC listener of one service.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on for gRPC (and gRPC-web where enabled).
    #[arg(long = "listen", env = "OMS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Also accept gRPC-web (HTTP/1.1) with CORS on the same port.
    #[arg(long = "grpc-web", env = "OMS_GRPC_WEB", default_value_t = false)]
    pub grpc_web: bool,
    /// Origins allowed by CORS for gRPC-web; empty allows any origin.
    #[arg(long = "cors-origin", env = "OMS_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// How long to let open streams and in-flight calls finish after SIGTERM.
    #[arg(long = "drain-timeout", env = "OMS_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

impl ServerArgs {
    /// A plain gRPC listener on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen: Some(listen),
            grpc_web: false,
            cors_origins: Vec::new(),
            drain_timeout: Duration::from_secs(20),
        }
    }

    /// The configured address or the service's default port on all interfaces.
    pub fn listen_or(&self, default_port: u16) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], default_port)))
    }
}

/// The Prometheus endpoint (one per process).
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Address of the Prometheus `/metrics` listener, `off` to disable; default port 9464 on
    /// all interfaces (on loopback under `oms dev`).
    #[arg(
        id = "metrics_listen",
        long = "metrics-listen",
        env = "OMS_METRICS_LISTEN",
        global = true
    )]
    pub listen: Option<String>,
}

/// The Prometheus port of every process.
pub const METRICS_PORT: u16 = 9464;

impl MetricsArgs {
    /// The address to listen on (`default` when not configured), or `None` when disabled.
    pub fn address(&self, default: SocketAddr) -> Result<Option<SocketAddr>, String> {
        match self.listen.as_deref().map(str::trim) {
            None | Some("") => Ok(Some(default)),
            Some(off) if off.eq_ignore_ascii_case("off") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| format!("--metrics-listen {text:?}: {e}")),
        }
    }
}

/// A configuration as its flags' defaults and `OMS_*` variables give it (for hosts that build
/// service configurations in code: `oms dev`, tests).
pub fn defaults<C: clap::Args + clap::FromArgMatches>() -> Result<C, clap::Error> {
    let command = C::augment_args(clap::Command::new("oms"));
    let matches = command.try_get_matches_from(["oms"])?;
    C::from_arg_matches(&matches)
}

/// Where `oms dev` keeps its SQLite files.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from(".oms")
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d` (humantime's format).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?}: {e} (e.g. 250ms, 5s, 2m, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn metrics_can_be_switched_off() {
        let default = SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
        let unset = MetricsArgs { listen: None };
        assert_eq!(unset.address(default).unwrap(), Some(default));
        let off = MetricsArgs {
            listen: Some("off".into()),
        };
        assert_eq!(off.address(default).unwrap(), None);
        let on = MetricsArgs {
            listen: Some("0.0.0.0:9000".into()),
        };
        assert_eq!(on.address(default).unwrap().unwrap().port(), 9000);
        let bad = MetricsArgs {
            listen: Some("nine".into()),
        };
        assert!(bad.address(default).is_err());
    }
}
