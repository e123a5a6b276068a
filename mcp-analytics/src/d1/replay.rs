//! Synchronous code over an asynchronous database: a [`Replay`] is a [`Source`] answering
//! from a cache of `(sql, params) → rows`. A statement it has no answer for is recorded as a
//! miss and answered with no rows; [`run`] fetches a pass's misses in one batch and runs the
//! code again, until a pass has none. The code must be a pure function of the answers (the
//! readers and the write planner are), so the last pass is the one a synchronous database
//! would have given.

use std::{cell::RefCell, collections::HashMap};

use super::{D1Error, Executor, Statement, Value};
use crate::store::source::{Param, Row, Source, Visit};

/// How many passes [`run`] makes at most (each fetches what the previous one missed; the
/// dashboard's readers fetch once, a write's plan once, twice when an hour's allowance fills).
const PASSES: usize = 8;

/// A parameter as a cache key (floats by their bits).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(Option<String>),
    Float(u64),
}

/// A cache of answers, recording the statements it lacked.
#[derive(Default)]
pub(crate) struct Replay {
    answers: HashMap<(String, Vec<Key>), Vec<Vec<Value>>>,
    /// The statements missed (each once), with their keys.
    misses: RefCell<Vec<(Vec<Key>, Statement)>>,
}

impl Replay {
    /// The statements missed since the last call, each once.
    fn take_misses(&self) -> Vec<(Vec<Key>, Statement)> {
        std::mem::take(&mut *self.misses.borrow_mut())
    }
}

fn keys(params: &[Param<'_>]) -> Vec<Key> {
    params
        .iter()
        .map(|param| match param {
            Param::Int(value) => Key::Int(*value),
            Param::Text(value) => Key::Text(value.map(str::to_owned)),
            Param::Float(value) => Key::Float(value.to_bits()),
        })
        .collect()
}

fn values(params: &[Param<'_>]) -> Vec<Value> {
    params
        .iter()
        .map(|param| match param {
            Param::Int(value) => Value::Int(*value),
            Param::Text(value) => (*value).into(),
            Param::Float(value) => Value::Real(*value),
        })
        .collect()
}

/// Runs `code` until it misses nothing, fetching each pass's misses in one batch.
pub(crate) async fn run<X: Executor, T>(
    executor: &X,
    cache: &mut Replay,
    mut code: impl FnMut(&Replay) -> Result<T, D1Error>,
) -> Result<T, D1Error> {
    for _ in 0..PASSES {
        let result = code(cache);
        let misses = cache.take_misses();
        if misses.is_empty() {
            return result;
        }
        let (keys, statements): (Vec<_>, Vec<_>) = misses.into_iter().unzip();
        let outcomes = executor.batch(&statements).await?;
        if outcomes.len() != statements.len() {
            return Err(D1Error::new(format!(
                "a batch of {} statements answered {}",
                statements.len(),
                outcomes.len()
            )));
        }
        for ((key, statement), outcome) in keys.into_iter().zip(statements).zip(outcomes) {
            cache.answers.insert((statement.sql, key), outcome.rows);
        }
    }
    Err(D1Error::new(format!(
        "a reader still asked for new statements after {PASSES} passes"
    )))
}

impl Source for Replay {
    type Error = D1Error;

    fn each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        visit: &mut Visit<'_, D1Error>,
    ) -> Result<(), D1Error> {
        // Owned only to look up (the cache is small; the readers run a few dozen statements).
        let key = keys(params);
        match self.answers.get(&(sql.to_owned(), key.clone())) {
            Some(rows) => {
                for row in rows {
                    visit(&Cells(row))?;
                }
            }
            None => {
                let mut misses = self.misses.borrow_mut();
                if !misses
                    .iter()
                    .any(|(known, missed)| missed.sql == sql && *known == key)
                {
                    misses.push((key, Statement::new(sql, values(params))));
                }
            }
        }
        Ok(())
    }

    fn execute(&self, sql: &str, _params: &[Param<'_>]) -> Result<u64, D1Error> {
        Err(D1Error::new(format!(
            "a replayed reader cannot write ({sql})"
        )))
    }
}

/// A row of cached values.
struct Cells<'r>(&'r [Value]);

impl Cells<'_> {
    fn cell(&self, index: usize) -> Result<&Value, D1Error> {
        self.0
            .get(index)
            .ok_or_else(|| D1Error::new(format!("no column {index} in a row")))
    }
}

fn mismatch(index: usize, wanted: &str, found: &Value) -> D1Error {
    D1Error::new(format!(
        "column {index}: expected {wanted}, found {found:?}"
    ))
}

impl Row<D1Error> for Cells<'_> {
    fn int(&self, index: usize) -> Result<i64, D1Error> {
        self.nullable_int(index)?
            .ok_or_else(|| mismatch(index, "an integer", &Value::Null))
    }

    fn nullable_int(&self, index: usize) -> Result<Option<i64>, D1Error> {
        match self.cell(index)? {
            Value::Null => Ok(None),
            Value::Int(value) => Ok(Some(*value)),
            // D1 answers numbers as JavaScript numbers.
            Value::Real(value) if value.fract() == 0.0 => Ok(Some(*value as i64)),
            other => Err(mismatch(index, "an integer", other)),
        }
    }

    fn float(&self, index: usize) -> Result<f64, D1Error> {
        match self.cell(index)? {
            Value::Int(value) => Ok(*value as f64),
            Value::Real(value) => Ok(*value),
            other => Err(mismatch(index, "a number", other)),
        }
    }

    fn text(&self, index: usize) -> Result<Option<String>, D1Error> {
        match self.cell(index)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            other => Err(mismatch(index, "text", other)),
        }
    }

    fn blob(&self, index: usize) -> Result<&[u8], D1Error> {
        match self.cell(index)? {
            Value::Null => Ok(&[]),
            Value::Blob(bytes) => Ok(bytes),
            other => Err(mismatch(index, "a BLOB", other)),
        }
    }
}
