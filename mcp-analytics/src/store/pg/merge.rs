//! Adding rows to a rollup whose BLOBs (latency histograms, distinct-count sketches) merge in
//! Rust, safely with several writers at once.
//!
//! SQLite merges them in the upsert with custom SQL functions; PostgreSQL has no such functions
//! without an extension (and PL/pgSQL would be a second implementation of both encodings, slow on
//! 1,024-byte sketches). So each batch, in its transaction:
//! 1. inserts its rows with `ON CONFLICT DO NOTHING`, answering the keys it created;
//! 2. locks the rows that already existed with `SELECT … FOR UPDATE` and reads their BLOBs;
//! 3. merges in Rust and `UPDATE`s them (counts and sums added in SQL).
//!
//! A row is thus only ever changed by the transaction holding its lock, and a writer that loses
//! an insert race waits for the winner's commit, then finds the row in step 2. Every writer
//! takes its keys in one order (sorted, passed along with their ordinality), which keeps lock
//! waits from forming cycles in practice; PostgreSQL's deadlock detector covers the rest and the
//! sink retries the whole batch (see `write`).

use std::collections::HashSet;

use tokio_postgres::{Transaction, types::ToSql};

use crate::store::aggregate::{self, BucketKey, ClientKey, ClientTotals, HourKey, HourTotals};
pub(super) use crate::store::rollup::tables::{
    BUCKETED, CLIENTS, HOURS, REQUEST_HOURS, REQUEST_MINUTES, Table,
};

/// One row to add.
pub(super) struct Row {
    pub time: i64,
    pub texts: Vec<String>,
    pub calls: i64,
    pub sum_us: i64,
    pub max_us: i64,
    pub blobs: Vec<Vec<u8>>,
}

impl Row {
    fn key(&self) -> (i64, &[String]) {
        (self.time, &self.texts)
    }

    /// A row of a rollup per time bucket (see [`BUCKETED`]).
    pub fn bucket(
        ((start, server, tool, status), totals): (BucketKey<'_>, aggregate::Totals),
    ) -> Row {
        Row {
            time: start,
            texts: vec![server.to_owned(), tool.to_owned(), status.to_owned()],
            calls: totals.calls,
            sum_us: totals.sum_us,
            max_us: totals.max_us,
            blobs: vec![totals.latency.encode()],
        }
    }

    /// A row of [`CLIENTS`].
    pub fn client(
        ((hour, server, tool, name, version, protocol, status), client): (ClientKey, ClientTotals),
    ) -> Row {
        Row {
            time: hour,
            texts: vec![server, tool, name, version, protocol, status.to_owned()],
            calls: client.totals.calls,
            sum_us: client.totals.sum_us,
            max_us: client.totals.max_us,
            blobs: vec![client.totals.latency.encode(), client.sessions.encode()],
        }
    }

    /// A row of [`HOURS`].
    pub fn hour(((hour, server, tool, status, error_type), hourly): (HourKey, HourTotals)) -> Row {
        Row {
            time: hour,
            texts: vec![server, tool, status.to_owned(), error_type],
            calls: hourly.totals.calls,
            sum_us: hourly.totals.sum_us,
            max_us: hourly.totals.max_us,
            blobs: vec![
                hourly.totals.latency.encode(),
                hourly.users.encode(),
                hourly.sessions.encode(),
            ],
        }
    }
}

/// The `unnest(…) WITH ORDINALITY AS alias(…)` of `table`'s key columns (parameters from 1),
/// plus, with `values`, the counters and BLOBs.
fn unnest(table: &Table, alias: &str, values: bool) -> String {
    let mut arrays = vec!["$1::bigint[]".to_owned()];
    let mut names = vec![table.time.to_owned()];
    for text in table.texts {
        arrays.push(format!("${}::text[]", arrays.len() + 1));
        names.push((*text).to_owned());
    }
    if values {
        for counter in ["calls", "duration_us_sum", "duration_us_max"] {
            arrays.push(format!("${}::bigint[]", arrays.len() + 1));
            names.push(counter.to_owned());
        }
        for (blob, _) in table.blobs {
            arrays.push(format!("${}::bytea[]", arrays.len() + 1));
            names.push((*blob).to_owned());
        }
    }
    format!(
        "unnest({}) WITH ORDINALITY AS {alias}({}, ord)",
        arrays.join(", "),
        names.join(", ")
    )
}

fn key_columns(table: &Table) -> Vec<&'static str> {
    std::iter::once(table.time)
        .chain(table.texts.iter().copied())
        .collect()
}

/// The column arrays of `rows`: keys, then (with `values`) counters and BLOBs.
fn arrays(table: &Table, rows: &[&Row], values: bool) -> Vec<Box<dyn ToSql + Sync + Send>> {
    let mut out: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(
        rows.iter().map(|row| row.time).collect::<Vec<i64>>(),
    )];
    for index in 0..table.texts.len() {
        out.push(Box::new(
            rows.iter()
                .map(|row| row.texts[index].clone())
                .collect::<Vec<String>>(),
        ));
    }
    if values {
        out.push(Box::new(
            rows.iter().map(|row| row.calls).collect::<Vec<i64>>(),
        ));
        out.push(Box::new(
            rows.iter().map(|row| row.sum_us).collect::<Vec<i64>>(),
        ));
        out.push(Box::new(
            rows.iter().map(|row| row.max_us).collect::<Vec<i64>>(),
        ));
        for index in 0..table.blobs.len() {
            out.push(Box::new(
                rows.iter()
                    .map(|row| row.blobs[index].clone())
                    .collect::<Vec<Vec<u8>>>(),
            ));
        }
    }
    out
}

fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| &**param as &(dyn ToSql + Sync))
        .collect()
}

/// Adds `rows` (distinct keys) to `table` in `transaction`.
pub(super) async fn add(
    transaction: &Transaction<'_>,
    table: &Table,
    mut rows: Vec<Row>,
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by(|a, b| a.key().cmp(&b.key()));
    let keys = key_columns(table);
    let key_list = keys.join(", ");
    let all: Vec<&Row> = rows.iter().collect();

    // 1. Rows new to the table.
    let insert = format!(
        "INSERT INTO {name} ({key_list}, calls, duration_us_sum, duration_us_max, {blobs}) SELECT {key_list}, calls, duration_us_sum, duration_us_max, {blobs} FROM {unnest} ORDER BY ord ON CONFLICT DO NOTHING RETURNING {key_list}",
        name = table.name,
        blobs = table
            .blobs
            .iter()
            .map(|(blob, _)| *blob)
            .collect::<Vec<_>>()
            .join(", "),
        unnest = unnest(table, "v", true),
    );
    let params = arrays(table, &all, true);
    let created: HashSet<(i64, Vec<String>)> = transaction
        .query(&insert, &refs(&params))
        .await?
        .iter()
        .map(|row| {
            (
                row.get::<_, i64>(0),
                (1..=table.texts.len())
                    .map(|index| row.get::<_, String>(index))
                    .collect(),
            )
        })
        .collect();
    let existing: Vec<&Row> = rows
        .iter()
        .filter(|row| !created.contains(&(row.time, row.texts.clone())))
        .collect();
    if existing.is_empty() {
        return Ok(());
    }

    // 2. Lock the rows that were there, in key order, and read their BLOBs.
    let matches = |left: &str, right: &str| {
        keys.iter()
            .map(|key| format!("{left}.{key} = {right}.{key}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let blob_list = table
        .blobs
        .iter()
        .map(|(blob, _)| format!("t.{blob}"))
        .collect::<Vec<_>>()
        .join(", ");
    let lock = format!(
        "SELECT k.ord, {blob_list} FROM {unnest} JOIN {name} t ON {on} ORDER BY k.ord FOR UPDATE OF t",
        unnest = unnest(table, "k", false),
        name = table.name,
        on = matches("t", "k"),
    );
    let params = arrays(table, &existing, false);
    let stored = transaction.query(&lock, &refs(&params)).await?;

    // 3. Merge and write back.
    let mut merged: Vec<Row> = Vec::with_capacity(existing.len());
    for row in &stored {
        let ordinal = usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX);
        let Some(mine) = existing.get(ordinal) else {
            continue;
        };
        let blobs = table
            .blobs
            .iter()
            .enumerate()
            .map(|(index, (_, merge))| merge(row.get::<_, &[u8]>(index + 1), &mine.blobs[index]))
            .collect();
        merged.push(Row {
            time: mine.time,
            texts: mine.texts.clone(),
            calls: mine.calls,
            sum_us: mine.sum_us,
            max_us: mine.max_us,
            blobs,
        });
    }
    let sets = table
        .blobs
        .iter()
        .map(|(blob, _)| format!("{blob} = v.{blob}"))
        .collect::<Vec<_>>()
        .join(", ");
    let update = format!(
        "UPDATE {name} t SET calls = t.calls + v.calls, duration_us_sum = t.duration_us_sum + v.duration_us_sum, duration_us_max = greatest(t.duration_us_max, v.duration_us_max), {sets} FROM {unnest} WHERE {on}",
        name = table.name,
        unnest = unnest(table, "v", true),
        on = matches("t", "v"),
    );
    let merged: Vec<&Row> = merged.iter().collect();
    let params = arrays(table, &merged, true);
    transaction.execute(&update, &refs(&params)).await?;
    Ok(())
}
