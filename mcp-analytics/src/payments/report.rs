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

impl PaymentsSummary {
    /// Reads the summary from the analytics database; empty when no payment tables exist.
    pub fn read(conn: &Connection, since_ms: i64) -> rusqlite::Result<Self> {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'payment_events'",
            [],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(Self::default());
        }
        let revenue = |column: &str, limit: i64| -> rusqlite::Result<Vec<Revenue>> {
            let sql = format!(
                "SELECT coalesce({column}, ''), coalesce(currency, ''), sum(CASE WHEN kind IN ('refunded', 'disputed') THEN -amount ELSE amount END), sum(kind IN ('checkout_completed', 'invoice_paid')) FROM payment_events
                 WHERE ts_ms >= ?1 AND {REVENUE} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT ?2"
            );
            let mut statement = conn.prepare(&sql)?;
            statement
                .query_map(params![since_ms, limit], |row| {
                    Ok(Revenue {
                        key: row.get(0)?,
                        currency: row.get(1)?,
                        amount: row.get(2)?,
                        payments: row.get::<_, i64>(3)? as u64,
                    })
                })?
                .collect()
        };
        let count = |sql: &str| -> rusqlite::Result<u64> {
            conn.query_row(sql, [since_ms], |row| row.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        let mut statement = conn.prepare(
            "WITH asked AS (SELECT DISTINCT tool, user_id FROM tool_calls WHERE ts_ms >= ?1 AND status = 'payment_required' AND error_type = 'payment_required' AND user_id IS NOT NULL),
                  paid AS (SELECT DISTINCT tool, user_id FROM payment_events WHERE ts_ms >= ?1 AND kind = 'checkout_completed')
             SELECT asked.tool, count(*), count(paid.user_id) FROM asked LEFT JOIN paid USING (tool, user_id) GROUP BY 1 ORDER BY 2 DESC",
        );
        let conversion = match &mut statement {
            Ok(statement) => statement
                .query_map([since_ms], |row| {
                    Ok(Conversion {
                        tool: row.get(0)?,
                        asked: row.get::<_, i64>(1)? as u64,
                        paid: row.get::<_, i64>(2)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?,
            // A payments-only database (no analytics table): no conversion to show.
            Err(_) => Vec::new(),
        };
        Ok(Self {
            by_tool: revenue("tool", 100)?,
            by_user: revenue("user_id", 20)?,
            conversion,
            active_subscriptions: conn.query_row(
                "SELECT count(*) FROM payment_subscriptions WHERE status IN ('active', 'trialing')",
                [],
                |row| row.get::<_, i64>(0),
            )? as u64,
            failures: count(
                "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind IN ('payment_failed', 'meter_event_failed')",
            )?,
            checkouts_created: count(
                "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind = 'checkout_created'",
            )?,
            meter_events_sent: count(
                "SELECT count(*) FROM payment_events WHERE ts_ms >= ?1 AND kind = 'meter_event_sent'",
            )?,
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
