//! Payment analytics for the dashboard and reports: revenue by tool and by user, conversion
//! from `payment_required` to paid, active subscriptions and payment failures.
//!
//! Revenue counts one-time purchases (`checkout_completed` with an amount) and paid invoices
//! (`invoice_paid`, subscriptions), less refunds and disputes (`refunded`, `disputed`, plus
//! `dispute_won`), in minor units per currency.

use serde::Serialize;

use crate::store::source::{Param, Source};

/// Revenue from one tool or user in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revenue {
    /// The tool name or user id.
    pub key: String,
    /// ISO currency code, lower case.
    pub currency: String,
    /// Total in minor units (cents).
    pub amount: i64,
    /// Number of payments.
    pub payments: u64,
}

/// Conversion of one tool: users asked to pay and users who paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conversion {
    /// The tool.
    pub tool: String,
    /// Distinct users who got `payment_required`.
    pub asked: u64,
    /// Of those, users who completed a checkout for the tool.
    pub paid: u64,
}

/// Everything the dashboard shows about payments since a point in time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaymentsSummary {
    /// Revenue per tool, largest first.
    pub by_tool: Vec<Revenue>,
    /// Revenue per user, largest first (top 20).
    pub by_user: Vec<Revenue>,
    /// Conversion per paid tool.
    pub conversion: Vec<Conversion>,
    /// Subscriptions currently active or trialing.
    pub active_subscriptions: u64,
    /// Failed invoice payments and refused meter events.
    pub failures: u64,
    /// Checkouts created.
    pub checkouts_created: u64,
    /// Meter events delivered.
    pub meter_events_sent: u64,
}

/// An amount in minor units as people read it: `format_amount(1050, "usd")` is `10.50 USD`
/// (two-decimal currencies).
pub fn format_amount(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}

const REVENUE: &str = "(kind = 'invoice_paid' OR (kind IN ('checkout_completed', 'refunded', 'disputed', 'dispute_won') AND amount IS NOT NULL))";

/// The summary's statements, written once in the SQL SQLite and PostgreSQL share (`?N`
/// placeholders, numbered `$N` by PostgreSQL's `Source`; sums cast to `BIGINT`). Ties are
/// broken by key, so both databases list rows in one order.
mod sql {
    /// Whether table `?1` exists (SQLite's catalogue).
    pub(super) const HAS_TABLE: &str =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1";

    /// Revenue by `column` (`tool` or `user_id`): `?1` since, `?2` limit.
    pub(super) fn revenue(column: &str) -> String {
        format!(
            "SELECT coalesce({column}, ''), coalesce(currency, ''),
                    CAST(coalesce(sum(CASE WHEN kind IN ('refunded', 'disputed') THEN -amount ELSE amount END), 0) AS BIGINT),
                    CAST(sum(CASE WHEN kind IN ('checkout_completed', 'invoice_paid') THEN 1 ELSE 0 END) AS BIGINT)
             FROM payment_events
             WHERE ts_ms >= ?1 AND {revenue} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT ?2",
            revenue = super::REVENUE
        )
    }

    pub(super) const CONVERSION: &str = "WITH asked AS (SELECT DISTINCT tool, user_id FROM tool_calls WHERE ts_ms >= ?1 AND status = 'payment_required' AND error_type = 'payment_required' AND user_id IS NOT NULL),
              paid AS (SELECT DISTINCT tool, user_id FROM payment_events WHERE ts_ms >= ?1 AND kind = 'checkout_completed')
         SELECT asked.tool, count(*), count(paid.user_id) FROM asked LEFT JOIN paid USING (tool, user_id) GROUP BY 1 ORDER BY 2 DESC, 1";

    pub(super) const ACTIVE_SUBSCRIPTIONS: &str =
        "SELECT count(*) FROM payment_subscriptions WHERE status IN ('active', 'trialing')";
    pub(super) const FAILURES: &str = "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind IN ('payment_failed', 'meter_event_failed')";
    pub(super) const CHECKOUTS_CREATED: &str =
        "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind = 'checkout_created'";
    pub(super) const METER_EVENTS_SENT: &str =
        "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind = 'meter_event_sent'";

    /// `sql` with PostgreSQL's placeholders.
    #[cfg(feature = "postgres")]
    pub(super) fn pg(sql: &str) -> String {
        sql.replace('?', "$")
    }
}

/// A count read as unsigned.
fn unsigned(count: i64) -> u64 {
    count.max(0).unsigned_abs()
}

impl PaymentsSummary {
    /// Reads the summary from the analytics database; empty when no payment tables exist.
    #[cfg(feature = "sqlite")]
    pub fn read(conn: &rusqlite::Connection, since_ms: i64) -> rusqlite::Result<Self> {
        Self::read_from(conn, since_ms)
    }

    /// [`PaymentsSummary::read`] from any SQLite database the readers query (a file, or one
    /// reached another way): it asks SQLite's catalogue which tables exist. (PostgreSQL:
    /// [`PaymentsSummary::read_pg`].)
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))] // Another SQLite's `Source`.
    pub(crate) fn read_from<S: Source>(source: &S, since_ms: i64) -> Result<Self, S::Error> {
        let has_table = |table: &str| {
            let found = source.rows(sql::HAS_TABLE, &[Param::Text(Some(table))], |row| {
                row.int(0)
            })?;
            Ok(found.first().is_some_and(|&count| count > 0))
        };
        if !has_table("payment_events")? {
            return Ok(Self::default());
        }
        let revenue = |column: &str, limit: i64| {
            source.rows(
                &sql::revenue(column),
                &[Param::Int(since_ms), Param::Int(limit)],
                |row| {
                    Ok(Revenue {
                        key: row.string(0)?,
                        currency: row.string(1)?,
                        amount: row.int(2)?,
                        payments: unsigned(row.int(3)?),
                    })
                },
            )
        };
        let count = |sql: &str, params: &[Param<'_>]| {
            let counts = source.rows(sql, params, |row| row.int(0))?;
            Ok(unsigned(counts.first().copied().unwrap_or(0)))
        };
        let since = [Param::Int(since_ms)];
        // A payments-only database (no analytics table) has no conversion to show.
        let conversion = if has_table("tool_calls")? {
            source.rows(sql::CONVERSION, &since, |row| {
                Ok(Conversion {
                    tool: row.string(0)?,
                    asked: unsigned(row.int(1)?),
                    paid: unsigned(row.int(2)?),
                })
            })?
        } else {
            Vec::new()
        };
        Ok(Self {
            by_tool: revenue("tool", 100)?,
            by_user: revenue("user_id", 20)?,
            conversion,
            active_subscriptions: count(sql::ACTIVE_SUBSCRIPTIONS, &[])?,
            failures: count(sql::FAILURES, &since)?,
            checkouts_created: count(sql::CHECKOUTS_CREATED, &since)?,
            meter_events_sent: count(sql::METER_EVENTS_SENT, &since)?,
        })
    }

    /// [`PaymentsSummary::read`] from a PostgreSQL database (feature `postgres`): the same
    /// summary of the same rows; empty when no payment tables exist.
    #[cfg(feature = "postgres")]
    pub async fn read_pg(
        client: &impl tokio_postgres::GenericClient,
        since_ms: i64,
    ) -> Result<Self, tokio_postgres::Error> {
        let exists = |table: &'static str| async move {
            client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await?
                .try_get::<_, bool>(0)
        };
        if !exists("payment_events").await? {
            return Ok(Self::default());
        }
        let revenue = |column: &'static str, limit: i64| async move {
            let rows = client
                .query(&sql::pg(&sql::revenue(column)), &[&since_ms, &limit])
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(Revenue {
                        key: row.try_get(0)?,
                        currency: row.try_get(1)?,
                        amount: row.try_get(2)?,
                        payments: unsigned(row.try_get(3)?),
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        };
        let count = |sql: &'static str| async move {
            client
                .query_one(&sql::pg(sql), &[&since_ms])
                .await?
                .try_get(0)
                .map(unsigned)
        };
        let conversion = if exists("tool_calls").await? {
            client
                .query(&sql::pg(sql::CONVERSION), &[&since_ms])
                .await?
                .iter()
                .map(|row| {
                    Ok(Conversion {
                        tool: row.try_get(0)?,
                        asked: unsigned(row.try_get(1)?),
                        paid: unsigned(row.try_get(2)?),
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            by_tool: revenue("tool", 100).await?,
            by_user: revenue("user_id", 20).await?,
            conversion,
            active_subscriptions: unsigned(
                client
                    .query_one(sql::ACTIVE_SUBSCRIPTIONS, &[])
                    .await?
                    .try_get(0)?,
            ),
            failures: count(sql::FAILURES).await?,
            checkouts_created: count(sql::CHECKOUTS_CREATED).await?,
            meter_events_sent: count(sql::METER_EVENTS_SENT).await?,
        })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use rusqlite::{Connection, params};

    use super::*;

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(format_amount(1050, "usd"), "10.50 USD");
        assert_eq!(format_amount(5, "eur"), "0.05 EUR");
        assert_eq!(format_amount(-250, "usd"), "-2.50 USD");
    }

    /// `payment_events` rows: (ts_ms, kind, user, tool, amount, currency, reference).
    type Event = (
        i64,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<i64>,
        Option<&'static str>,
        Option<&'static str>,
    );

    /// A month of payments: purchases in two currencies, subscription invoices, a partial
    /// refund, a dispute lost then won, failures, checkouts and meter events; ties in revenue
    /// (image and report earn 500 each) and rows before the summary's start.
    const EVENTS: &[Event] = &[
        (
            50,
            "checkout_completed",
            Some("old"),
            Some("image"),
            Some(9900),
            Some("usd"),
            Some("cs_old"),
        ),
        (
            100,
            "checkout_created",
            Some("ann"),
            Some("image"),
            None,
            None,
            Some("cs_1"),
        ),
        (
            110,
            "checkout_completed",
            Some("ann"),
            Some("image"),
            Some(500),
            Some("usd"),
            Some("cs_1"),
        ),
        (
            120,
            "checkout_completed",
            Some("bob"),
            Some("report"),
            Some(500),
            Some("usd"),
            Some("cs_2"),
        ),
        (
            130,
            "checkout_completed",
            Some("cem"),
            Some("image"),
            Some(700),
            Some("eur"),
            Some("cs_3"),
        ),
        (
            140,
            "invoice_paid",
            Some("dan"),
            Some("api"),
            Some(2000),
            Some("usd"),
            Some("in_1"),
        ),
        (
            150,
            "invoice_paid",
            Some("dan"),
            Some("api"),
            Some(2000),
            Some("usd"),
            Some("in_2"),
        ),
        (
            160,
            "refunded",
            Some("dan"),
            Some("api"),
            Some(300),
            Some("usd"),
            Some("re_1"),
        ),
        (
            170,
            "checkout_completed",
            Some("eve"),
            Some("search"),
            Some(1200),
            Some("usd"),
            Some("cs_4"),
        ),
        (
            180,
            "disputed",
            Some("eve"),
            Some("search"),
            Some(1200),
            Some("usd"),
            Some("dp_1"),
        ),
        (
            190,
            "dispute_won",
            Some("eve"),
            Some("search"),
            Some(1200),
            Some("usd"),
            Some("dp_1"),
        ),
        (
            200,
            "checkout_completed",
            Some("fay"),
            Some("report"),
            None,
            None,
            Some("cs_5"),
        ),
        (
            210,
            "payment_failed",
            Some("gus"),
            Some("api"),
            None,
            None,
            Some("in_3"),
        ),
        (
            220,
            "meter_event_failed",
            Some("dan"),
            Some("api"),
            None,
            None,
            Some("mcpa_1"),
        ),
        (
            230,
            "meter_event_sent",
            Some("dan"),
            Some("api"),
            None,
            None,
            Some("mcpa_2"),
        ),
        (
            240,
            "meter_event_sent",
            Some("dan"),
            Some("api"),
            None,
            None,
            Some("mcpa_3"),
        ),
        (
            250,
            "meter_event_retried",
            Some("dan"),
            Some("api"),
            None,
            None,
            Some("mcpa_4"),
        ),
        (
            260,
            "checkout_created",
            Some("hal"),
            Some("image"),
            None,
            None,
            Some("cs_6"),
        ),
        (
            270,
            "invoice_paid",
            None,
            None,
            Some(100),
            Some("usd"),
            Some("in_4"),
        ),
    ];

    /// Subscriptions: (id, user, status).
    const SUBSCRIPTIONS: &[(&str, &str, &str)] = &[
        ("sub_1", "dan", "active"),
        ("sub_2", "ivy", "trialing"),
        ("sub_3", "gus", "past_due"),
        ("sub_4", "jo", "canceled"),
    ];

    /// Calls answered `payment_required`: (ts_ms, tool, user).
    const ASKED: &[(i64, &str, &str)] = &[
        (90, "image", "ann"),
        (91, "image", "hal"),
        (92, "image", "ann"),
        (93, "report", "bob"),
        (94, "search", "kim"),
        (40, "search", "old"),
    ];

    const SINCE_MS: i64 = 60;

    fn sqlite_summary() -> PaymentsSummary {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::payments::store::PaymentStore::open(&dir.path().join("summary.db")).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("summary.db")).unwrap();
        for (ts, kind, user, tool, amount, currency, reference) in EVENTS {
            conn.execute(
                "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![ts, kind, user, tool, amount, currency, reference],
            )
            .unwrap();
        }
        for (id, user, status) in SUBSCRIPTIONS {
            conn.execute(
                "INSERT INTO payment_subscriptions (subscription_id, user_id, status, updated_ms) VALUES (?1, ?2, ?3, 0)",
                params![id, user, status],
            )
            .unwrap();
        }
        for (n, (ts, tool, user)) in ASKED.iter().enumerate() {
            conn.execute(
                "INSERT INTO tool_calls (id, ts_ms, server_name, server_version, tool, user_id, transport, duration_us, status, error_type) VALUES (?1, ?2, 's', '1', ?3, ?4, 'http', 1, 'payment_required', 'payment_required')",
                params![format!("call_{n}"), ts, tool, user],
            )
            .unwrap();
        }
        PaymentsSummary::read(&conn, SINCE_MS).unwrap()
    }

    #[test]
    fn the_summary_counts_revenue_conversion_subscriptions_and_failures() {
        let summary = sqlite_summary();
        let usd = |key: &str, amount, payments| Revenue {
            key: key.into(),
            currency: "usd".into(),
            amount,
            payments,
        };
        assert_eq!(
            summary.by_tool,
            vec![
                usd("api", 3700, 2),
                usd("search", 1200, 1),
                Revenue {
                    key: "image".into(),
                    currency: "eur".into(),
                    amount: 700,
                    payments: 1
                },
                usd("image", 500, 1),
                usd("report", 500, 1),
                usd("", 100, 1),
            ]
        );
        assert_eq!(summary.by_user.first(), Some(&usd("dan", 3700, 2)));
        assert_eq!(
            summary.conversion,
            vec![
                Conversion {
                    tool: "image".into(),
                    asked: 2,
                    paid: 1
                },
                Conversion {
                    tool: "report".into(),
                    asked: 1,
                    paid: 1
                },
                Conversion {
                    tool: "search".into(),
                    asked: 1,
                    paid: 0
                },
            ]
        );
        assert_eq!(
            (
                summary.active_subscriptions,
                summary.failures,
                summary.checkouts_created,
                summary.meter_events_sent
            ),
            (2, 2, 2, 2)
        );
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_summary_read_from_postgresql_equals_the_one_read_from_sqlite() {
        use crate::postgres::test_cluster::Cluster;

        let url = crate::database::PostgresUrl::parse(
            &Cluster::shared().create_database("payments_summary"),
        )
        .unwrap();
        let client = crate::postgres::connect(&url).await.unwrap();
        assert_eq!(
            PaymentsSummary::read_pg(&client, 0).await.unwrap(),
            PaymentsSummary::default(),
            "a database without payment tables has nothing to show"
        );
        tokio::task::spawn_blocking({
            let url = url.clone();
            move || crate::payments::store::pg::PgPayments::open(&url)
        })
        .await
        .unwrap()
        .unwrap();
        for (ts, kind, user, tool, amount, currency, reference) in EVENTS {
            client
                .execute(
                    "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[ts, kind, user, tool, amount, currency, reference],
                )
                .await
                .unwrap();
        }
        for (id, user, status) in SUBSCRIPTIONS {
            client
                .execute(
                    "INSERT INTO payment_subscriptions (subscription_id, user_id, status, updated_ms) VALUES ($1, $2, $3, 0)",
                    &[id, user, status],
                )
                .await
                .unwrap();
        }
        let without_analytics = PaymentsSummary::read_pg(&client, SINCE_MS).await.unwrap();
        assert!(
            without_analytics.conversion.is_empty(),
            "payment tables alone: no conversion"
        );
        // The columns of the analytics table the conversion reads (its own migrations create
        // the whole table).
        client
            .batch_execute(
                "CREATE TABLE tool_calls (id TEXT PRIMARY KEY, ts_ms BIGINT NOT NULL, tool TEXT NOT NULL, user_id TEXT, status TEXT NOT NULL, error_type TEXT)",
            )
            .await
            .unwrap();
        for (n, (ts, tool, user)) in ASKED.iter().enumerate() {
            client
                .execute(
                    "INSERT INTO tool_calls VALUES ($1, $2, $3, $4, 'payment_required', 'payment_required')",
                    &[&format!("call_{n}"), ts, tool, user],
                )
                .await
                .unwrap();
        }

        let expected = sqlite_summary();
        let summary = PaymentsSummary::read_pg(&client, SINCE_MS).await.unwrap();
        assert_eq!(summary, expected);
        assert_eq!(
            PaymentsSummary {
                conversion: Vec::new(),
                ..expected.clone()
            },
            without_analytics
        );
    }
}
