//! Database access: one sea-orm connection per service, SQLite or PostgreSQL by URL, and the
//! service's migrations run at start.
//!
//! SQLite runs in WAL mode (synchronous NORMAL) with a single pooled connection: SQLite allows
//! one writer at a time anyway, and one connection makes every transaction serial, so
//! conditional updates hold without `SQLITE_BUSY` retries. PostgreSQL uses a pool and row
//! locks.

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseArgs;

/// Why the database could not be used at start.
#[derive(Debug, thiserror::Error)]
pub enum DbStartError {
    /// The URL names no supported database.
    #[error(
        "database URL {url:?} is not supported: use sqlite://path/to/file.db or postgres://user@host/db"
    )]
    UnsupportedUrl {
        /// The URL without its password.
        url: String,
    },
    /// The SQLite file's directory could not be created.
    #[error("cannot create the directory for {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed (server down, wrong credentials, missing database).
    #[error("cannot connect to database {url}: {source}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// A migration failed.
    #[error("migrating database {url} failed: {source}")]
    Migrate {
        /// The URL without its password.
        url: String,
        /// The failing statement's error.
        source: DbErr,
    },
}

/// Connects to the database named by `args.url`, creating a SQLite file if needed.
pub async fn connect(args: &DatabaseArgs) -> Result<DatabaseConnection, DbStartError> {
    let url = args.url.as_deref().unwrap_or_default().trim();
    let shown = redact(url);
    let backend =
        backend_of(url).ok_or_else(|| DbStartError::UnsupportedUrl { url: shown.clone() })?;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .acquire_timeout(args.acquire_timeout)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    match backend {
        DbBackend::Sqlite => {
            create_sqlite_dir(url)?;
            options
                .max_connections(1)
                .min_connections(1)
                // A local file does not drop connections.
                .test_before_acquire(false)
                .map_sqlx_sqlite_opts(|opts| {
                    opts.create_if_missing(true)
                        .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a
                        // crash of the process loses nothing, a power cut may lose the last
                        // commits (the file stays consistent). Right for the embedded default;
                        // production runs on PostgreSQL.
                        .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                        // Batch statements differ in their number of rows: keep them prepared.
                        .statement_cache_capacity(1_000)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                });
        }
        _ => {
            // A connection in use a moment ago is alive: pinging it before every statement
            // would double the round trips. One idle for a while (the server or a proxy may
            // have dropped it) is pinged first.
            options
                .max_connections(args.max_connections.max(1))
                .test_before_acquire_if_idle_for(Duration::from_secs(1));
        }
    }
    Database::connect(options)
        .await
        .map_err(|source| DbStartError::Connect { url: shown, source })
}

/// Counts and times every statement sent on `db` for the Prometheus endpoint
/// (`oms_db_statements_total`, `oms_db_statement_seconds`, labelled with `database`): where a
/// slow order spends its time, and how many round trips it costs, on any backend.
pub fn measure(db: &mut DatabaseConnection, database: &'static str) {
    db.set_metric_callback(move |info| {
        metrics::counter!("oms_db_statements_total", "database" => database).increment(1);
        metrics::histogram!("oms_db_statement_seconds", "database" => database)
            .record(info.elapsed.as_secs_f64());
        if info.failed {
            metrics::counter!("oms_db_statement_failures_total", "database" => database)
                .increment(1);
        }
    });
}

/// Runs the pending migrations of `M`. Safe to call on every start and from several
/// replicas at once: on PostgreSQL the whole run holds an advisory lock in one transaction.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbStartError> {
    let run = async {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = db.begin().await?;
                let table = M::migration_table_name().to_string();
                txn.execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock(hashtext('oms-migrate:{table}'))"
                ))
                .await?;
                M::up(&txn, None).await?;
                txn.commit().await
            }
            _ => M::up(db, None).await,
        }
    };
    run.await.map_err(|source| DbStartError::Migrate {
        url: "(connected database)".into(),
        source,
    })
}

/// Connects and migrates in one step (what every service does at start).
pub async fn connect_and_migrate<M: MigratorTrait>(
    args: &DatabaseArgs,
) -> Result<DatabaseConnection, DbStartError> {
    let db = connect(args).await?;
    migrate::<M>(&db).await.map_err(|e| match e {
        DbStartError::Migrate { source, .. } => DbStartError::Migrate {
            url: redact(args.url.as_deref().unwrap_or_default()),
            source,
        },
        other => other,
    })?;
    Ok(db)
}

fn backend_of(url: &str) -> Option<DbBackend> {
    if url.starts_with("sqlite:") {
        Some(DbBackend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(DbBackend::Postgres)
    } else {
        None
    }
}

fn create_sqlite_dir(url: &str) -> Result<(), DbStartError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| DbStartError::CreateDir {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The URL with any password replaced by `***`, safe to log.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Creates PostgreSQL database `name` through the server at `admin_url` and returns its URL.
/// Retries while another session copies the template (concurrent CREATE DATABASE).
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, DbErr> {
    if !crate::bus::is_subject_token(name) || name.contains(['-', ':']) {
        return Err(DbErr::Custom(format!(
            "{name:?} is not a plain database name"
        )));
    }
    let admin = Database::connect(admin_url).await?;
    let mut attempt = 0u64;
    loop {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
        {
            Ok(_) => break,
            Err(error) if attempt < 50 && error.to_string().contains("being accessed") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 + attempt * 10)).await;
            }
            Err(error) => {
                let _ = admin.close().await;
                return Err(error);
            }
        }
    }
    let _ = admin.close().await;
    Ok(match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin_url}/{name}"),
    })
}

/// Drops PostgreSQL database `name` (closing its sessions).
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), DbErr> {
    let admin = Database::connect(admin_url).await?;
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map(|_| ());
    let _ = admin.close().await;
    dropped
}

/// Whether an error is a unique-constraint violation (an insert that lost a race or repeated).
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://oms:s3cret@db:5432/orders"),
            "postgres://oms:***@db:5432/orders"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact("sqlite://.oms/order.db"), "sqlite://.oms/order.db");
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_supported() {
        assert_eq!(backend_of("sqlite://x.db"), Some(DbBackend::Sqlite));
        assert_eq!(backend_of("postgres://h/db"), Some(DbBackend::Postgres));
        assert_eq!(backend_of("postgresql://h/db"), Some(DbBackend::Postgres));
        assert_eq!(backend_of("mysql://h/db"), None);
        assert_eq!(backend_of("orders.db"), None);
    }

    #[tokio::test]
    async fn an_unsupported_url_is_a_clear_error() {
        let err = connect(&DatabaseArgs::new("mysql://localhost/x"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_a_clear_error_not_a_panic() {
        let mut args = DatabaseArgs::new("postgres://postgres@127.0.0.1:1/nothing");
        args.acquire_timeout = Duration::from_secs(2);
        let err = connect(&args).await.unwrap_err();
        assert!(
            err.to_string().starts_with("cannot connect to database"),
            "{err}"
        );
    }
}
