//! Settings from the environment: the process environment, then `.dev.vars`, then `.env`.

use std::{path::Path, time::Duration};

use crate::Error;

/// Variable lookup over the process environment, then `.dev.vars`, then `.env` (files read now,
/// from the current directory; the process environment is read at each lookup).
pub(crate) fn lookup() -> Result<impl Fn(&str) -> Option<String> + Send + Sync + 'static, Error> {
    let files = [
        read_env_file(Path::new(".dev.vars"))?,
        read_env_file(Path::new(".env"))?,
    ];
    Ok(move |name: &str| {
        std::env::var(name).ok().or_else(|| {
            files
                .iter()
                .flatten()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    })
}

pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a duration written as a whole number and a unit: `500ms`, `90s`, `30m`, `2h` or
/// `1d`. Zero and values past `u64` milliseconds are refused; the error says what was wrong.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "`{value}` does not start with a whole number (such as `30m`)"
        ));
    }
    let millis_per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => {
            return Err(format!(
                "`{value}` has no unit: add `s`, `m` or `h` (such as `{number}m`)"
            ));
        }
        other => {
            return Err(format!(
                "`{other}` in `{value}` is not a unit: use `ms`, `s`, `m`, `h` or `d`"
            ));
        }
    };
    let millis = number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(millis_per_unit))
        .ok_or_else(|| format!("`{value}` is too long"))?;
    if millis == 0 {
        return Err(format!("`{value}` is zero: a duration must be longer"));
    }
    Ok(Duration::from_millis(millis))
}

fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, Error> {
    match dotenvy::from_path_iter(path) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::EnvFile {
                path: path.to_owned(),
                source,
            }),
        Err(error) if error.not_found() => Ok(Vec::new()),
        Err(source) => Err(Error::EnvFile {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_are_a_whole_number_and_a_unit() {
        for (text, expected) in [
            ("90s", Duration::from_secs(90)),
            ("30m", Duration::from_secs(30 * 60)),
            ("2h", Duration::from_secs(2 * 3600)),
            ("1d", Duration::from_secs(86_400)),
            ("250ms", Duration::from_millis(250)),
            (" 45 m ", Duration::from_secs(45 * 60)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn a_bad_duration_is_refused_with_what_is_wrong() {
        for (text, says) in [
            ("", "does not start with a whole number"),
            ("m", "does not start with a whole number"),
            ("-5m", "does not start with a whole number"),
            ("1.5h", "`.5h` in `1.5h` is not a unit"),
            ("30", "has no unit: add `s`, `m` or `h` (such as `30m`)"),
            ("30 minutes", "`minutes` in `30 minutes` is not a unit"),
            ("0s", "is zero"),
            ("99999999999999999999s", "is too long"),
            ("18446744073709551615h", "is too long"),
        ] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
