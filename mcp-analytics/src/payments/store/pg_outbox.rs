//! `meter_outbox` on PostgreSQL, shared by every replica: rows are claimed for a while (a
//! lease) by the replica that sends them, so two replicas never send one event at once and a
//! dead replica's claims run out for another to take over. Each statement also does what goes
//! with it: an enqueue finds the users' customers, an outcome writes its `payment_events` row.

use tokio_postgres::{Error, GenericClient, types::Type};

use super::{Delivery, MeterRow, PaymentEventKind};

/// The channel a replica notifies after enqueueing, so every replica's sender wakes at once.
pub(crate) const CHANNEL: &str = "mcp_analytics_meter";

/// Metered calls to put into the outbox, column by column.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub identifiers: Vec<String>,
    pub event_names: Vec<String>,
    pub users: Vec<String>,
    pub tools: Vec<String>,
    /// Unix seconds.
    pub timestamps: Vec<i64>,
}

/// Puts metered calls into the outbox with their user's customer, in one statement (a
/// repeated identifier is ignored), and notifies every replica's sender. Returns the users
/// without a customer, whose calls are left out: their usage is not billable.
pub(crate) async fn enqueue(
    client: &impl GenericClient,
    calls: &Calls,
    now_ms: i64,
) -> Result<Vec<String>, Error> {
    if calls.identifiers.is_empty() {
        return Ok(Vec::new());
    }
    let row = client
        .query_typed_one(
            "WITH calls AS (
                 SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[])
                     AS c(identifier, event_name, user_id, tool, ts_s)
             ), inserted AS (
                 INSERT INTO meter_outbox (identifier, event_name, customer_id, user_id, tool, value, ts_s, state, next_attempt_ms)
                 SELECT c.identifier, c.event_name, p.customer_id, c.user_id, c.tool, 1, c.ts_s, 'pending', $6
                 FROM calls c JOIN payment_customers p USING (user_id)
                 ON CONFLICT (identifier) DO NOTHING
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM inserted), pg_notify($7, ''),
                    ARRAY(SELECT DISTINCT c.user_id FROM calls c LEFT JOIN payment_customers p USING (user_id) WHERE p.user_id IS NULL)",
            &[
                (&calls.identifiers, Type::TEXT_ARRAY),
                (&calls.event_names, Type::TEXT_ARRAY),
                (&calls.users, Type::TEXT_ARRAY),
                (&calls.tools, Type::TEXT_ARRAY),
                (&calls.timestamps, Type::INT8_ARRAY),
                (&now_ms, Type::INT8),
                (&CHANNEL, Type::TEXT),
            ],
        )
        .await?;
    row.try_get(2)
}

/// Puts rows into the outbox as they are (tests: events already resolved to a customer).
#[cfg(test)]
pub(crate) async fn enqueue_rows(
    client: &impl GenericClient,
    rows: &[MeterRow],
    now_ms: i64,
) -> Result<(), Error> {
    for row in rows {
        client
            .execute(
                "INSERT INTO meter_outbox (identifier, event_name, customer_id, user_id, tool, value, ts_s, state, next_attempt_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)",
                &[&row.identifier, &row.event_name, &row.customer_id, &row.user_id, &row.tool, &row.value, &row.ts_s, &now_ms],
            )
            .await?;
    }
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
        .query_typed(
            "UPDATE meter_outbox SET claimed_by = $1, claim_until_ms = $2
             WHERE identifier IN (
                 SELECT identifier FROM meter_outbox
                 WHERE state = 'pending' AND next_attempt_ms <= $3
                   AND (claim_until_ms IS NULL OR claim_until_ms < $3)
                 ORDER BY next_attempt_ms
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING identifier, event_name, customer_id, user_id, tool, value, ts_s, attempts, next_attempt_ms",
            &[
                (&replica, Type::TEXT),
                (&claim_until_ms, Type::INT8),
                (&now_ms, Type::INT8),
                (&limit, Type::INT8),
            ],
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

/// A delivery attempt's outcome.
#[derive(Clone, Debug)]
pub(crate) struct Outcome<'a> {
    pub identifier: &'a str,
    pub state: Delivery,
    pub next_attempt_ms: i64,
    pub error: Option<&'a str>,
    /// The `payment_events` row to write for it.
    pub kind: PaymentEventKind,
}

/// Records delivery outcomes, each with its `payment_events` row, and lets go of the claims,
/// in one statement — only for the events `replica` still holds (another replica took over a
/// claim that ran out: the outcome is its own). Returns the identifiers recorded.
pub(crate) async fn settle(
    client: &impl GenericClient,
    replica: &str,
    outcomes: &[Outcome<'_>],
    now_ms: i64,
) -> Result<Vec<String>, Error> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let identifiers: Vec<&str> = outcomes.iter().map(|o| o.identifier).collect();
    let states: Vec<&str> = outcomes.iter().map(|o| o.state.as_str()).collect();
    let next: Vec<i64> = outcomes.iter().map(|o| o.next_attempt_ms).collect();
    let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error).collect();
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.kind.as_str()).collect();
    let rows = client
        .query_typed(
            "WITH outcome AS (
                 SELECT * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[])
                     AS o(identifier, state, next_attempt_ms, error, kind)
             ), settled AS (
                 UPDATE meter_outbox m SET state = o.state, attempts = m.attempts + 1,
                        next_attempt_ms = o.next_attempt_ms, last_error = o.error,
                        claimed_by = NULL, claim_until_ms = NULL
                 FROM outcome o
                 WHERE m.identifier = o.identifier AND m.claimed_by = $1 AND m.state = 'pending'
                 RETURNING m.identifier, m.user_id, m.tool, m.event_name, o.kind, o.error
             ), recorded AS (
                 INSERT INTO payment_events (ts_ms, kind, user_id, tool, reference, detail)
                 SELECT $7, kind, user_id, tool, identifier, coalesce(error, event_name) FROM settled
             )
             SELECT identifier FROM settled",
            &[
                (&replica, Type::TEXT),
                (&identifiers, Type::TEXT_ARRAY),
                (&states, Type::TEXT_ARRAY),
                (&next, Type::INT8_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&kinds, Type::TEXT_ARRAY),
                (&now_ms, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(|row| row.try_get(0)).collect()
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
        .execute_typed(
            "UPDATE meter_outbox SET claimed_by = NULL, claim_until_ms = NULL
             WHERE identifier = ANY($1) AND claimed_by = $2",
            &[(&identifiers, Type::TEXT_ARRAY), (&replica, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// Meter events not yet delivered (by any replica), and when the next one can be sent: its
/// attempt is due and any claim on it ran out.
pub(crate) async fn standing(client: &impl GenericClient) -> Result<(i64, Option<i64>), Error> {
    let row = client
        .query_typed_one(
            "SELECT count(*), min(greatest(next_attempt_ms, coalesce(claim_until_ms + 1, 0)))::BIGINT
             FROM meter_outbox WHERE state = 'pending'",
            &[],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
