//! Settings from the environment: the process environment, then `.dev.vars`, then `.env`.

use std::path::Path;

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
