//! PostgreSQL plumbing shared by the analytics and the payment tables (feature `postgres`):
//! a connection pool for a [`PostgresUrl`] and versioned migrations.
//!
//! The client is `tokio-postgres` with a `deadpool-postgres` pool: it speaks the binary `COPY`
//! protocol the analytics writer needs and `LISTEN`/`NOTIFY` for the ledger's cache, with no
//! compile-time query checking against a live database (which sqlx's macros would need) and
//! few dependencies.
//!
//! Each component keeps its own ordered list of migrations; the table
//! `mcp_analytics_migrations` records how many of each list ran. Migrating takes a
//! transaction-scoped advisory lock, so replicas starting together apply each migration once.

use std::str::FromStr;

#[cfg(test)]
#[allow(dead_code)] // Not every test uses every part of the harness.
pub(crate) mod test_cluster;
#[cfg(test)]
pub(crate) mod test_relay;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, NoTls};

use crate::{Database, database::PostgresUrl};

/// A failure talking to PostgreSQL.
pub(crate) type PgError = Box<dyn std::error::Error + Send + Sync>;

/// The advisory lock key migrations hold (any constant shared by every replica).
const MIGRATION_LOCK: i64 = 0x6d63_705f_616e_616c; // "mcp_anal"

/// The longest a connection may take to make, or to free up in a pool.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The connection settings of `url`; a malformed URL is an error that does not repeat it.
pub(crate) fn config(url: &PostgresUrl) -> Result<tokio_postgres::Config, crate::Error> {
    let mut config =
        tokio_postgres::Config::from_str(url.expose()).map_err(|error| crate::Error::Database {
            database: Database::Postgres(url.clone()),
            reason: format!("not a PostgreSQL URL: {error}"),
        })?;
    if config.get_application_name().is_none() {
        config.application_name("mcp-analytics");
    }
    // An unreachable server fails a paid call closed within seconds, not a TCP timeout.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT);
    }
    Ok(config)
}

/// A pool of up to `size` connections to `url`. Connections are made when first used, on the
/// runtime that uses them.
pub(crate) fn pool(url: &PostgresUrl, size: usize) -> Result<Pool, crate::Error> {
    let manager = Manager::from_config(
        config(url)?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .build()
        .map_err(|error| crate::Error::Database {
            database: Database::Postgres(url.clone()),
            reason: error.to_string(),
        })
}

/// One connection to `url` outside any pool (tests use it) (for a writer thread or a `LISTEN`er); its
/// connection task runs on the current runtime.
#[cfg(test)]
pub(crate) async fn connect(url: &PostgresUrl) -> Result<Client, PgError> {
    let (client, connection) = config(url)?.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!("a PostgreSQL connection ended: {error}");
        }
    });
    Ok(client)
}

/// Applies the migrations of `component` not yet applied, in order, in one transaction.
pub(crate) async fn migrate(
    client: &mut Client,
    component: &str,
    migrations: &[&str],
) -> Result<(), tokio_postgres::Error> {
    // The lock comes first: `CREATE TABLE IF NOT EXISTS` is not atomic, and replicas starting
    // together would race on the catalog.
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mcp_analytics_migrations (
                component TEXT PRIMARY KEY,
                version   INTEGER NOT NULL
            )",
        )
        .await?;
    let applied: i32 = transaction
        .query_opt(
            "SELECT version FROM mcp_analytics_migrations WHERE component = $1",
            &[&component],
        )
        .await?
        .map_or(0, |row| row.get(0));
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied < migrations.len() {
        for migration in &migrations[applied..] {
            transaction.batch_execute(migration).await?;
        }
        let version = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
        transaction
            .execute(
                "INSERT INTO mcp_analytics_migrations (component, version) VALUES ($1, $2)
                 ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                &[&component, &version],
            )
            .await?;
    }
    transaction.commit().await
}

/// Connects to `url` once and applies `component`'s migrations, on a thread of its own (so a
/// synchronous builder can call it from inside or outside a runtime).
pub(crate) fn migrate_blocking(
    url: &PostgresUrl,
    component: &'static str,
    migrations: &'static [&'static str],
) -> Result<(), crate::Error> {
    let error = |reason: String| crate::Error::Database {
        database: Database::Postgres(url.clone()),
        reason,
    };
    let config = config(url)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| error(e.to_string()))?;
                runtime.block_on(async {
                    let (mut client, connection) = config
                        .connect(NoTls)
                        .await
                        .map_err(|e| error(e.to_string()))?;
                    let connection = tokio::spawn(connection);
                    let migrated = migrate(&mut client, component, migrations).await;
                    drop(client);
                    let _ = connection.await;
                    migrated.map_err(|e| error(e.to_string()))
                })
            })
            .join()
            .unwrap_or_else(|_| Err(error("the migration thread panicked".into())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_starting_together_on_a_new_database_each_migrate_without_error() {
        let url = test_cluster::Cluster::shared().create_database("starting_together");
        let url = PostgresUrl::parse(&url).expect("a PostgreSQL URL");
        const MIGRATIONS: &[&str] = &["CREATE TABLE t (id INTEGER)", "INSERT INTO t VALUES (1)"];
        std::thread::scope(|scope| {
            let replicas: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| migrate_blocking(&url, "race", MIGRATIONS)))
                .collect();
            for replica in replicas {
                replica.join().expect("no panic").expect("migrated");
            }
        });
    }
}
