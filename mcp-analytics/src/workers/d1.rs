//! [`crate::d1::Executor`] over a Worker's D1 binding.
//!
//! A batch holding only reads runs its statements concurrently with `raw()` (rows as arrays,
//! so columns keep their order even when two share a name); a batch that writes runs with
//! D1's `batch()`, atomically, its rows (rarely any) read from D1's objects in column order.

use futures::future::try_join_all;
use worker::{
    D1Database,
    js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array},
    wasm_bindgen::{JsCast, JsValue},
    wasm_bindgen_futures::JsFuture,
    worker_sys,
};

use crate::{
    d1::{D1Error, Executor, MAX_SAFE_INT, Outcome, Statement, Value},
    payments::{BatchFuture, SharedExecutor},
};

/// A D1 database as an [`Executor`].
pub(super) struct D1(pub(super) D1Database);

impl Executor for D1 {
    async fn batch(&self, statements: &[Statement]) -> Result<Vec<Outcome>, D1Error> {
        let database: &worker_sys::D1Database = self.0.as_ref().unchecked_ref();
        let prepared = statements
            .iter()
            .map(|statement| prepare(database, statement))
            .collect::<Result<Vec<_>, _>>()?;
        if statements.iter().all(|statement| is_read(&statement.sql)) {
            return try_join_all(prepared.iter().map(|statement| async move {
                let rows = promise(statement.raw()).await?;
                let rows = Array::from(&rows)
                    .iter()
                    .map(|row| Array::from(&row).iter().map(cell).collect())
                    .collect();
                Ok(Outcome { rows, changes: 0 })
            }))
            .await;
        }
        let results =
            promise(database.batch(prepared.into_iter().map(JsValue::from).collect())).await?;
        Array::from(&results)
            .iter()
            .map(|result| {
                let result: &worker_sys::D1Result = result.unchecked_ref();
                let rows = result
                    .results()
                    .map_err(error)?
                    .map(|rows| {
                        rows.iter()
                            .map(|row| {
                                Object::values(row.unchecked_ref())
                                    .iter()
                                    .map(cell)
                                    .collect()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let changes = result
                    .meta()
                    .ok()
                    .and_then(|meta| Reflect::get(&meta, &"changes".into()).ok())
                    .and_then(|changes| changes.as_f64())
                    .map_or(0, |changes| changes as u64);
                Ok(Outcome { rows, changes })
            })
            .collect()
    }
}

/// Whether `sql` only reads (`SELECT`, or `WITH … SELECT` without a write).
fn is_read(sql: &str) -> bool {
    let sql = sql.trim_start().to_ascii_uppercase();
    (sql.starts_with("SELECT") || sql.starts_with("WITH"))
        && !["INSERT ", "UPDATE ", "DELETE ", "REPLACE "]
            .iter()
            .any(|write| sql.contains(write))
}

fn prepare(
    database: &worker_sys::D1Database,
    statement: &Statement,
) -> Result<worker_sys::D1PreparedStatement, D1Error> {
    let prepared = database.prepare(&statement.sql).map_err(error)?;
    if statement.params.is_empty() {
        return Ok(prepared);
    }
    prepared
        .bind(statement.params.iter().map(bind).collect())
        .map_err(error)
}

fn bind(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Int(int) => JsValue::from_f64(*int as f64),
        Value::Real(real) => JsValue::from_f64(*real),
        Value::Text(text) => JsValue::from_str(text),
        Value::Blob(bytes) => Uint8Array::from(bytes.as_slice()).buffer().into(),
    }
}

/// A D1 value as read: numbers that are whole (and exact) read as integers.
fn cell(value: JsValue) -> Value {
    if value.is_null() || value.is_undefined() {
        Value::Null
    } else if let Some(number) = value.as_f64() {
        if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INT as f64 {
            Value::Int(number as i64)
        } else {
            Value::Real(number)
        }
    } else if let Some(text) = value.as_string() {
        Value::Text(text)
    } else if value.is_instance_of::<ArrayBuffer>() || value.is_instance_of::<Uint8Array>() {
        Value::Blob(Uint8Array::new(&value).to_vec())
    } else if Array::is_array(&value) {
        Value::Blob(
            Array::from(&value)
                .iter()
                .map(|byte| byte.as_f64().unwrap_or_default() as u8)
                .collect(),
        )
    } else if let Some(flag) = value.as_bool() {
        Value::Int(i64::from(flag))
    } else {
        Value::Text(format!("{value:?}"))
    }
}

async fn promise(promise: Result<worker::js_sys::Promise, JsValue>) -> Result<JsValue, D1Error> {
    JsFuture::from(promise.map_err(error)?).await.map_err(error)
}

/// D1's message (its errors carry the SQLite one as their cause).
fn error(value: JsValue) -> D1Error {
    let error: Option<&worker::js_sys::Error> = value.dyn_ref();
    let message = match error {
        Some(error) => {
            let cause = error.cause();
            match cause.dyn_ref::<worker::js_sys::Error>() {
                Some(cause) => format!(
                    "{}: {}",
                    String::from(error.message()),
                    String::from(cause.message())
                ),
                None => String::from(error.message()),
            }
        }
        None => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    };
    D1Error::new(message)
}

/// A D1 binding the payment components keep between requests. A Worker instance runs on one
/// thread, so the binding (a JavaScript object) is never reached from another.
pub(super) struct SharedD1(pub(super) worker::send::SendWrapper<D1>);

impl SharedExecutor for SharedD1 {
    fn batch<'a>(&'a self, statements: &'a [Statement]) -> BatchFuture<'a> {
        Box::pin(worker::send::SendFuture::new(Executor::batch(
            &*self.0, statements,
        )))
    }
}
