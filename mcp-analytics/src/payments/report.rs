//! Payment analytics for the dashboard and reports: revenue by tool and by user, conversion
//! from `payment_required` to paid, active subscriptions and payment failures.
//!
//! Revenue counts one-time purchases (`checkout_completed` with an amount) and paid invoices
//! (`invoice_paid`, subscriptions), less refunds and disputes (`refunded`, `disputed`, plus
//! `dispute_won`), in minor units per currency.

use rusqlite::{Connection, params};
use serde::Serialize;

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
/// placeholders, numbered `$N` for PostgreSQL; sums cast to `BIGINT`). Ties are broken by key,
/// so both databases list rows in one order.
mod sql {
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
    pub fn read(conn: &Connection, since_ms: i64) -> rusqlite::Result<Self> {
        let exists = |table: &str| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
        };
        if !exists("payment_events")? {
            return Ok(Self::default());
        }
        let revenue = |column: &str, limit: i64| -> rusqlite::Result<Vec<Revenue>> {
            let mut statement = conn.prepare(&sql::revenue(column))?;
            statement
                .query_map(params![since_ms, limit], |row| {
                    Ok(Revenue {
                        key: row.get(0)?,
                        currency: row.get(1)?,
                        amount: row.get(2)?,
                        payments: unsigned(row.get(3)?),
                    })
                })?
                .collect()
        };
        let count = |sql: &str| -> rusqlite::Result<u64> {
            conn.query_row(sql, [since_ms], |row| row.get(0))
                .map(unsigned)
        };
        // A payments-only database (no analytics table) has no conversion to show.
        let conversion = if exists("tool_calls")? {
            conn.prepare(sql::CONVERSION)?
                .query_map([since_ms], |row| {
                    Ok(Conversion {
                        tool: row.get(0)?,
                        asked: unsigned(row.get(1)?),
                        paid: unsigned(row.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            by_tool: revenue("tool", 100)?,
            by_user: revenue("user_id", 20)?,
            conversion,
            active_subscriptions: unsigned(conn.query_row(
                sql::ACTIVE_SUBSCRIPTIONS,
                [],
                |row| row.get(0),
            )?),
            failures: count(sql::FAILURES)?,
            checkouts_created: count(sql::CHECKOUTS_CREATED)?,
            meter_events_sent: count(sql::METER_EVENTS_SENT)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(format_amount(1050, "usd"), "10.50 USD");
        assert_eq!(format_amount(5, "eur"), "0.05 EUR");
        assert_eq!(format_amount(-250, "usd"), "-2.50 USD");
    }
}
