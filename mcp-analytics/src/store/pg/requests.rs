//! Requests other than `tools/call` on PostgreSQL, stored as tool calls are: a batch is copied
//! into the session's staging table and inserted with `ON CONFLICT (id) DO NOTHING`, and the
//! inserted rows' rollups are added in the same transaction (see `merge`). Each server's hourly
//! allowance of distinct targets per method is locked for the transaction and read afresh, as
//! other writers admit targets too.

use std::collections::{BTreeSet, HashSet};

use tokio_postgres::{
    Client,
    binary_copy::BinaryCopyInWriter,
    types::{ToSql, Type},
};

use super::{dollars, merge, schema};
use crate::{
    RequestEvent,
    event::Method,
    store::{
        allowance::hour_of,
        requests::{self, OTHER_TARGETS, RequestTargets},
    },
};

/// The column types of `schema::REQUEST_COLUMNS`.
const REQUEST_TYPES: [Type; 18] = [
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// Stores one batch of requests and their rollups in one transaction; returns how many were new.
pub(super) async fn store(
    client: &mut Client,
    targets: &mut RequestTargets,
    requests: &[RequestEvent],
) -> Result<usize, tokio_postgres::Error> {
    if requests.is_empty() {
        return Ok(0);
    }
    let transaction = client.transaction().await?;
    let sink = transaction
        .copy_in(&format!(
            "COPY requests_staging ({}) FROM STDIN (FORMAT binary)",
            schema::REQUEST_COLUMNS
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &REQUEST_TYPES);
    let mut writer = std::pin::pin!(writer);
    for request in requests {
        let duration = i64::try_from(request.duration_us).unwrap_or(i64::MAX);
        let row: [&(dyn ToSql + Sync); 18] = [
            &request.id,
            &request.ts_ms,
            &request.server_name,
            &request.server_version,
            &request.method.as_str(),
            &request.target,
            &request.user_id,
            &request.session_id,
            &request.client_name,
            &request.client_version,
            &request.protocol_version,
            &request.transport.as_str(),
            &request.request_id,
            &duration,
            &request.status.as_str(),
            &request.error_type,
            &request.error_message,
            &request.client_capabilities,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    let mut new_ids: HashSet<String> = transaction
        .query(schema::INSERT_STAGED_REQUESTS, &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The first request of each stored id (a batch may repeat one).
    let inserted: Vec<&RequestEvent> = requests
        .iter()
        .filter(|request| new_ids.remove(&request.id))
        .collect();

    // Locked in key order, then read afresh.
    let allowances: BTreeSet<(i64, &str, Method)> = inserted
        .iter()
        .filter(|request| {
            request
                .target
                .as_deref()
                .is_some_and(|target| target != OTHER_TARGETS)
        })
        .map(|request| {
            (
                hour_of(request.ts_ms),
                request.server_name.as_str(),
                request.method,
            )
        })
        .collect();
    for (hour, server, method) in allowances {
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($2::text || '/' || $3::text || '/' || $1::bigint::text, 0))",
                &[&hour, &server, &method.as_str()],
            )
            .await?;
        let stored = transaction
            .query(
                &dollars(requests::STORED_SQL),
                &[&hour, &server, &method.as_str(), &OTHER_TARGETS],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        targets.reload(hour, server, method, stored);
    }
    let mut rolled = Vec::with_capacity(inserted.len());
    for request in inserted {
        let target = targets.rollup_target(request, &mut |_, _, _| {
            // Every allowance this batch uses was reloaded just above.
            Ok::<_, std::convert::Infallible>(HashSet::new())
        });
        let Ok(target) = target;
        rolled.push((request, target));
    }

    let minutes = requests::minutes(&rolled)
        .into_iter()
        .map(
            |((minute, server, method, target, status), totals)| merge::Row {
                time: minute,
                texts: vec![
                    server.to_owned(),
                    method.as_str().to_owned(),
                    target.to_owned(),
                    status.to_owned(),
                ],
                calls: totals.calls,
                sum_us: totals.sum_us,
                max_us: totals.max_us,
                blobs: vec![totals.latency.encode()],
            },
        )
        .collect();
    merge::add(&transaction, &merge::REQUEST_MINUTES, minutes).await?;
    let hours = requests::hours(&rolled)
        .into_iter()
        .map(
            |((hour, server, method, target, status), totals, sessions)| merge::Row {
                time: hour,
                texts: vec![
                    server.to_owned(),
                    method.as_str().to_owned(),
                    target.to_owned(),
                    status.to_owned(),
                ],
                calls: totals.calls,
                sum_us: totals.sum_us,
                max_us: totals.max_us,
                blobs: vec![totals.latency.encode(), sessions.encode()],
            },
        )
        .collect();
    merge::add(&transaction, &merge::REQUEST_HOURS, hours).await?;
    transaction.commit().await?;
    Ok(rolled.len())
}
