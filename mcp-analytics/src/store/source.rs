//! What the readers (`summary`, `report`, `overview`, `views`, `unknown`, the alerts) need of a
//! database, so one copy of each query serves SQLite and PostgreSQL: run a statement with
//! positional parameters and visit its rows, or count the rows it changed. Statements are written once, in the SQL both dialects share,
//! with `?1`-style placeholders (PostgreSQL's side numbers them `$1`) and `CAST(… AS BIGINT)`
//! where a sum or a parameter's type would otherwise differ.

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    /// An integer (`BIGINT`).
    Int(i64),
    /// Text or NULL (`TEXT`).
    Text(Option<&'a str>),
    /// A float (`DOUBLE PRECISION`, SQLite's `REAL`).
    #[cfg_attr(not(feature = "alerts"), allow(dead_code))] // The alerts' thresholds.
    Float(f64),
}

/// One row of a result, read by column index.
pub(crate) trait Row<E> {
    /// A non-NULL integer column.
    fn int(&self, index: usize) -> Result<i64, E>;
    /// An integer column that may be NULL.
    #[cfg_attr(not(feature = "alerts"), allow(dead_code))] // The alerts' state.
    fn nullable_int(&self, index: usize) -> Result<Option<i64>, E>;
    /// A non-NULL float column.
    #[cfg_attr(not(feature = "alerts"), allow(dead_code))] // The alerts' thresholds.
    fn float(&self, index: usize) -> Result<f64, E>;
    /// A text column that may be NULL.
    fn text(&self, index: usize) -> Result<Option<String>, E>;
    /// A blob column (an empty slice when NULL).
    fn blob(&self, index: usize) -> Result<&[u8], E>;

    /// A non-NULL text column (NULL reads as empty).
    fn string(&self, index: usize) -> Result<String, E> {
        Ok(self.text(index)?.unwrap_or_default())
    }
}

/// What [`Source::each`] hands every row to.
pub(crate) type Visit<'v, E> = dyn FnMut(&dyn Row<E>) -> Result<(), E> + 'v;

/// A database the readers query.
pub(crate) trait Source {
    /// Its error.
    type Error;

    /// Runs `sql` with `params` and hands every row to `visit`, in order.
    fn each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        visit: &mut Visit<'_, Self::Error>,
    ) -> Result<(), Self::Error>;

    /// Runs `sql` (an `INSERT`, `UPDATE` or `DELETE`) with `params`; returns how many rows it
    /// changed.
    #[cfg_attr(not(feature = "alerts"), allow(dead_code))] // The alerts' state.
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Self::Error>;

    /// Runs `sql` and maps every row.
    fn rows<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        mut map: impl FnMut(&dyn Row<Self::Error>) -> Result<T, Self::Error>,
    ) -> Result<Vec<T>, Self::Error>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.each(sql, params, &mut |row| {
            out.push(map(row)?);
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Int(value) => value.to_sql(),
            Param::Text(value) => value.to_sql(),
            Param::Float(value) => value.to_sql(),
        }
    }
}

#[cfg(feature = "sqlite")]
impl Row<rusqlite::Error> for rusqlite::Row<'_> {
    fn int(&self, index: usize) -> rusqlite::Result<i64> {
        self.get(index)
    }

    fn nullable_int(&self, index: usize) -> rusqlite::Result<Option<i64>> {
        self.get(index)
    }

    fn float(&self, index: usize) -> rusqlite::Result<f64> {
        self.get(index)
    }

    fn text(&self, index: usize) -> rusqlite::Result<Option<String>> {
        self.get(index)
    }

    fn blob(&self, index: usize) -> rusqlite::Result<&[u8]> {
        Ok(self.get_ref(index)?.as_blob_or_null()?.unwrap_or_default())
    }
}

#[cfg(feature = "sqlite")]
impl Source for rusqlite::Connection {
    type Error = rusqlite::Error;

    fn each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        visit: &mut Visit<'_, rusqlite::Error>,
    ) -> rusqlite::Result<()> {
        let mut statement = self.prepare_cached(sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            visit(row)?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<u64> {
        let changed = self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }
}
