//! `meter_outbox` on PostgreSQL, shared by every replica: rows are claimed for a while (a
//! lease) by the replica that sends them, so two replicas never send one event at once and a
//! dead replica's claims run out for another to take over. Also what the meter reads and
//! writes beside it: the users' customers and its `payment_events` rows.

use std::collections::HashMap;

use tokio_postgres::{Error, GenericClient};

use super::{Delivery, EventRow, MeterRow, PaymentEventKind};

/// The channel a replica notifies after enqueueing, so every replica's sender wakes at once.
pub(crate) const CHANNEL: &str = "mcp_analytics_meter";

/// Puts meter events into the outbox (a repeated identifier is ignored) and notifies the
/// senders (on commit, when `client` is a transaction).
pub(crate) async fn enqueue(
    client: &impl GenericClient,
    rows: &[MeterRow],
    now_ms: i64,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&MeterRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let identifiers = column(|row| Some(row.identifier.clone()));
    let event_names = column(|row| Some(row.event_name.clone()));
    let customers = column(|row| Some(row.customer_id.clone()));
    let users = column(|row| row.user_id.clone());
    let tools = column(|row| row.tool.clone());
    let values: Vec<i64> = rows.iter().map(|row| row.value).collect();
    let timestamps: Vec<i64> = rows.iter().map(|row| row.ts_s).collect();
    client
        .execute(
            "INSERT INTO meter_outbox (identifier, event_name, customer_id, user_id, tool, value, ts_s, state, next_attempt_ms)
             SELECT i, e, c, u, t, v, s, 'pending', $8
             FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[]) AS r(i, e, c, u, t, v, s)
             ON CONFLICT (identifier) DO NOTHING",
            &[
                &identifiers,
                &event_names,
                &customers,
                &users,
                &tools,
                &values,
                &timestamps,
                &now_ms,
            ],
        )
        .await?;
    client
        .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
        .await?;
    Ok(())
}

/// Claims up to `limit` pending events due by `now_ms` that nobody holds (or whose holder's
/// lease ran out) for `replica` until `claim_until_ms`, oldest due first. Rows another
/// transaction is claiming right now are skipped, not waited for.
pub(crate) async fn claim(
    client: &impl GenericClient,
    replica: &str,
    now_ms: i64,
    claim_until_ms: i64,
    limit: usize,
) -> Result<Vec<MeterRow>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "UPDATE meter_outbox SET claimed_by = $1, claim_until_ms = $2
             WHERE identifier IN (
                 SELECT identifier FROM meter_outbox
                 WHERE state = 'pending' AND next_attempt_ms <= $3
                   AND (claim_until_ms IS NULL OR claim_until_ms < $3)
                 ORDER BY next_attempt_ms
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING identifier, event_name, customer_id, user_id, tool, value, ts_s, attempts, next_attempt_ms",
            &[&replica, &claim_until_ms, &now_ms, &limit],
        )
        .await?;
    let mut claimed: Vec<(i64, MeterRow)> = rows
        .iter()
        .map(|row| {
            (
                row.get(8),
                MeterRow {
                    identifier: row.get(0),
                    event_name: row.get(1),
                    customer_id: row.get(2),
                    user_id: row.get(3),
                    tool: row.get(4),
                    value: row.get(5),
                    ts_s: row.get(6),
                    attempts: row.get(7),
                },
            )
        })
        .collect();
    claimed.sort_by_key(|(due, _)| *due);
    Ok(claimed.into_iter().map(|(_, row)| row).collect())
}

/// Records a delivery attempt's outcome and lets go of the claim, only while `replica` still
/// holds the row (another replica took over a claim that ran out: the outcome is its own).
/// Returns whether the row was updated.
pub(crate) async fn settle(
    client: &impl GenericClient,
    replica: &str,
    identifier: &str,
    state: Delivery,
    next_attempt_ms: i64,
    error: Option<&str>,
) -> Result<bool, Error> {
    let updated = client
        .execute(
            "UPDATE meter_outbox SET state = $3, attempts = attempts + 1, next_attempt_ms = $4, last_error = $5,
                    claimed_by = NULL, claim_until_ms = NULL
             WHERE identifier = $1 AND claimed_by = $2 AND state = 'pending'",
            &[&identifier, &replica, &state.as_str(), &next_attempt_ms, &error],
        )
        .await?;
    Ok(updated == 1)
}

/// Lets go of claims `replica` holds on `identifiers` without an attempt (a round stopped
/// before sending them), so any replica may send them at once.
pub(crate) async fn release(
    client: &impl GenericClient,
    replica: &str,
    identifiers: &[String],
) -> Result<(), Error> {
    if identifiers.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "UPDATE meter_outbox SET claimed_by = NULL, claim_until_ms = NULL
             WHERE identifier = ANY($1) AND claimed_by = $2",
            &[&identifiers, &replica],
        )
        .await?;
    Ok(())
}

/// Meter events not yet delivered (by any replica), and when the next one can be sent: its
/// attempt is due and any claim on it ran out.
pub(crate) async fn standing(client: &impl GenericClient) -> Result<(i64, Option<i64>), Error> {
    let row = client
        .query_one(
            "SELECT count(*), min(greatest(next_attempt_ms, coalesce(claim_until_ms + 1, 0)))::BIGINT
             FROM meter_outbox WHERE state = 'pending'",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The customer of each of `users` that has one.
pub(crate) async fn customers_of(
    client: &impl GenericClient,
    users: &[&str],
) -> Result<HashMap<String, String>, Error> {
    let rows = client
        .query(
            "SELECT user_id, customer_id FROM payment_customers WHERE user_id = ANY($1)",
            &[&users],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Writes one `payment_events` row.
pub(crate) async fn record_event(
    client: &impl GenericClient,
    ts_ms: i64,
    kind: PaymentEventKind,
    row: &EventRow<'_>,
) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &ts_ms,
                &kind.as_str(),
                &row.user_id,
                &row.tool,
                &row.amount,
                &row.currency,
                &row.reference,
                &row.detail,
            ],
        )
        .await?;
    Ok(())
}
