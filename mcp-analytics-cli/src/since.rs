//! `--since` and the agent tools' `since`: how far back a view looks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The accepted forms, as error messages name them.
pub const FORMS: &str = "a number and a unit (s, m, h, d), e.g. `30m`, `24h`, `7d`, or `all`";

/// A time range ending now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// Everything recorded.
    All,
    /// The last this long.
    Last(Duration),
}

/// A `since` value that is none of [`FORMS`].
#[derive(Debug, thiserror::Error)]
#[error("since {given:?}: expected {FORMS}")]
pub struct BadSince {
    given: String,
}

impl std::str::FromStr for Since {
    type Err = BadSince;

    fn from_str(since: &str) -> Result<Self, BadSince> {
        if since == "all" {
            return Ok(Since::All);
        }
        let bad = || BadSince {
            given: since.to_owned(),
        };
        let (number, unit) = since.split_at(
            since
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(since.len()),
        );
        let unit_seconds: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let seconds = number
            .parse::<u64>()
            .ok()
            .and_then(|amount| amount.checked_mul(unit_seconds))
            // Past the epoch is `all` in all but name; further is a typo.
            .filter(|seconds| *seconds <= 1 << 40)
            .ok_or_else(bad)?;
        Ok(Since::Last(Duration::from_secs(seconds)))
    }
}

impl Since {
    /// The start of the range in unix ms.
    pub fn start_ms(self) -> i64 {
        match self {
            Since::All => 0,
            Since::Last(length) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                now.saturating_sub(length).as_millis() as i64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        assert_eq!("all".parse::<Since>().unwrap(), Since::All);
        assert_eq!(
            "30m".parse::<Since>().unwrap(),
            Since::Last(Duration::from_secs(1800))
        );
        assert_eq!(
            "7d".parse::<Since>().unwrap(),
            Since::Last(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            "90s".parse::<Since>().unwrap(),
            Since::Last(Duration::from_secs(90))
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_the_accepted_forms() {
        for bad in [
            "",
            "h",
            "24",
            "24H",
            "-5h",
            "1.5h",
            "yesterday",
            "24 h",
            "ALL",
        ] {
            let error = bad.parse::<Since>().unwrap_err().to_string();
            assert!(
                error.contains("`24h`") && error.contains("`all`"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_huge_number_is_an_error_not_an_overflow() {
        for huge in ["9999999999999999d", "99999999999999999999h"] {
            assert!(huge.parse::<Since>().is_err(), "{huge}");
        }
        assert!(Since::Last(Duration::MAX).start_ms() == 0);
    }
}
