//! Where the analytics and the payment tables live: a SQLite file (the zero-setup default) or,
//! with the `postgres` feature, a PostgreSQL server that many replicas of a server share.
//!
//! `MCP_ANALYTICS_DB` and every builder's `database(…)` take either: a `postgres://…` or
//! `postgresql://…` URL is PostgreSQL, anything else a file path.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// What a PostgreSQL URL is answered with in a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
pub(crate) const NO_POSTGRES_FEATURE: &str = "built without mcp-analytics's `postgres` feature";

/// Why a SQLite file cannot be opened in this build.
#[cfg(all(feature = "alerts", not(feature = "sqlite")))]
pub(crate) const NO_SQLITE_FEATURE: &str = "built without mcp-analytics's `sqlite` feature";

/// A database: a SQLite file or a PostgreSQL URL. Its `Display` and `Debug` never show a
/// password.
///
/// ```
/// use mcp_analytics::Database;
///
/// assert!(matches!(Database::from("./mcp-analytics.db"), Database::Sqlite(_)));
/// let shared = Database::from("postgres://app:s3cret@db.internal/analytics");
/// assert!(matches!(shared, Database::Postgres(_)));
/// assert_eq!(shared.to_string(), "postgres://app:***@db.internal/analytics");
/// ```
#[doc = include_str!("../docs/postgres.md")]
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite file, created when missing.
    Sqlite(PathBuf),
    /// A PostgreSQL server (feature `postgres`).
    Postgres(PostgresUrl),
}

impl Database {
    /// The SQLite file, when this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

impl From<&str> for Database {
    /// A `postgres://` or `postgresql://` URL (any case of the scheme) is PostgreSQL; anything
    /// else a file path.
    fn from(value: &str) -> Self {
        match PostgresUrl::parse(value) {
            Some(url) => Database::Postgres(url),
            None => Database::Sqlite(PathBuf::from(value)),
        }
    }
}

impl From<String> for Database {
    fn from(value: String) -> Self {
        Database::from(value.as_str())
    }
}

impl From<&String> for Database {
    fn from(value: &String) -> Self {
        Database::from(value.as_str())
    }
}

impl From<PathBuf> for Database {
    /// Always a file (a path is never read as a URL).
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_owned())
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Self {
        Database::Sqlite(path.clone())
    }
}

impl From<&Database> for Database {
    fn from(database: &Database) -> Self {
        database.clone()
    }
}

impl From<PostgresUrl> for Database {
    fn from(url: PostgresUrl) -> Self {
        Database::Postgres(url)
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/database?options`). It
/// shows with the password replaced by `***`; [`PostgresUrl::expose`] gives it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// `value` when it is a `postgres://` or `postgresql://` URL (surrounding blanks removed).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, _) = value.split_once("://")?;
        (scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql"))
            .then(|| Self(value.to_owned()))
    }

    /// The whole URL, password included: pass it to a client, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (in the user info or a `password=` option) replaced by `***`.
    pub fn redacted(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        // A client may read the user info up to any `@` (a password can hold an unencoded `/`
        // or `?`), so everything between the first `:` and the last `@` is hidden.
        let (authority, tail) = match rest.rsplit_once('@') {
            Some((user_info, after)) => {
                let host_end = after.find(['/', '?']).unwrap_or(after.len());
                let (host, tail) = after.split_at(host_end);
                let authority = match user_info.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => format!("{user_info}@{host}"),
                };
                (authority, tail)
            }
            None => {
                let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(authority_end);
                (authority.to_owned(), tail)
            }
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                            format!("{name}=***")
                        }
                        _ => pair.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_owned(),
        };
        format!("{scheme}://{authority}{tail}")
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_in_either_spelling_is_postgres_and_anything_else_a_file() {
        for url in [
            "postgres://localhost/db",
            "postgresql://u@h:5433/db",
            " POSTGRES://h/db ",
        ] {
            assert!(
                matches!(Database::from(url), Database::Postgres(_)),
                "{url}"
            );
        }
        for path in [
            "./mcp-analytics.db",
            "/var/lib/x.db",
            "postgres.db",
            "C:\\x.db",
        ] {
            assert_eq!(Database::from(path), Database::Sqlite(PathBuf::from(path)));
        }
        assert_eq!(
            Database::from(PathBuf::from("postgres://not-a-url")),
            Database::Sqlite(PathBuf::from("postgres://not-a-url")),
            "a path is a path"
        );
    }

    #[test]
    fn a_postgres_url_never_shows_its_password() {
        let database =
            Database::from("postgres://app:hunter2@db:5432/x?sslmode=disable&password=hunter2");
        for shown in [database.to_string(), format!("{database:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("app:***@db:5432/x"), "{shown}");
        }
        let Database::Postgres(url) = &database else {
            unreachable!()
        };
        assert!(url.expose().contains("hunter2"));
        assert_eq!(
            Database::from("postgresql://u@h/d").to_string(),
            "postgresql://u@h/d",
            "nothing to hide"
        );
        assert_eq!(
            Database::from("postgres://a:b@c@h/d").to_string(),
            "postgres://a:***@h/d",
            "an @ in the password"
        );
        for url in ["postgres://app:pa/ss@db/x", "postgres://app:pa?ss@db/x"] {
            let shown = Database::from(url).to_string();
            assert!(
                !shown.contains("pa/ss") && !shown.contains("pa?ss"),
                "{shown}"
            );
            assert_eq!(shown, "postgres://app:***@db/x");
        }
    }
}
