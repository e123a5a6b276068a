//! What is recorded for arguments that do not deserialize: serde's message without the value it
//! repeats (`invalid type: string "hunter2", expected u32` becomes `invalid type: string,
//! expected u32 at `pin``), so a secret sent in the wrong field is not stored or exported; and
//! how the tool-quality report reads such a message back ([`classify`]).

// The read-back side (`ParamProblem`, `classify`) serves the store alone.

use serde::Serialize;

/// What was wrong with a field of a tool's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamProblem {
    /// A required field was absent.
    Missing,
    /// The value had another JSON type than the field's (a string for a number, …).
    WrongType,
    /// The value had the right type but was refused (out of range, not a variant, wrong length).
    InvalidValue,
    /// A field the tool does not take.
    UnknownField,
    /// A field given twice.
    Duplicate,
    /// A message the report does not classify (a type's own error).
    Other,
}

/// The field path and the problem a recorded message (see [`described`]) names. Array indices
/// are dropped (`tags[1]` becomes `tags[]`) so that one field's failures count together.
pub(crate) fn classify(message: &str) -> (Option<String>, ParamProblem) {
    let (what, path) = match message.rsplit_once(" at `") {
        Some((what, rest)) => (what, rest.strip_suffix('`')),
        None => (message, None),
    };
    let named = |head: &str| {
        what.strip_prefix(head)
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name)
    };
    let (problem, name) = if let Some(name) = named("missing field `") {
        (ParamProblem::Missing, Some(name))
    } else if let Some(name) = named("duplicate field `") {
        (ParamProblem::Duplicate, Some(name))
    } else if what.starts_with("unknown field `") {
        (ParamProblem::UnknownField, None)
    } else if what.starts_with("invalid type: ") {
        (ParamProblem::WrongType, None)
    } else if ["invalid value: ", "unknown variant", "invalid length "]
        .iter()
        .any(|head| what.starts_with(head))
    {
        (ParamProblem::InvalidValue, None)
    } else {
        (ParamProblem::Other, None)
    };
    let path = path.filter(|path| !path.is_empty() && *path != ".");
    let field = match (path, name) {
        (Some(path), Some(name)) => Some(format!("{path}.{name}")),
        (path, name) => path.or(name).map(str::to_owned),
    };
    (field.map(|field| without_indices(&field)), problem)
}

/// `tags[1].name` → `tags[].name`.
fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push(c);
            }
            ']' => {
                in_index = false;
                out.push(c);
            }
            c if in_index && c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out
}

/// The recorded description of a deserialization error: its kind, the expected type and the
/// field path (`path`, as `serde_path_to_error` prints it), never the offending value.
pub(super) fn described(message: &str, path: Option<&str>) -> String {
    let what = without_value(message);
    match path {
        Some(path) if !path.is_empty() && path != "." => format!("{what} at `{path}`"),
        _ => what,
    }
}

/// serde's standard messages with values removed; any other message (a type's own error, which
/// may quote the value) is withheld.
fn without_value(message: &str) -> String {
    for head in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(head) {
            // The expected type comes last and is the type's own text; the value before it may
            // itself contain ", expected ".
            return match rest.rfind(", expected ") {
                Some(at) => format!("{head}{}{}", kind(&rest[..at]), &rest[at..]),
                None => format!("{head}{}", kind(rest)),
            };
        }
    }
    if message.starts_with("unknown variant ") {
        return match message.rfind(", expected ") {
            Some(at) => format!("unknown variant{}", &message[at..]),
            None => "unknown variant".to_owned(),
        };
    }
    const KEPT: &[&str] = &[
        "missing field `",
        "duplicate field `",
        "unknown field `",
        "invalid length ",
    ];
    if KEPT.iter().any(|head| message.starts_with(head)) {
        return message.to_owned();
    }
    "invalid value (the message is not recorded: it may repeat the value)".to_owned()
}

/// The kind of value serde's `Unexpected` describes (`string "…"` → `string`).
fn kind(unexpected: &str) -> &'static str {
    const KINDS: &[&str] = &[
        "boolean",
        "integer",
        "floating point",
        "character",
        "string",
        "byte array",
        "unit value",
        "Option value",
        "newtype struct",
        "sequence",
        "map",
        "enum",
        "unit variant",
        "newtype variant",
        "tuple variant",
        "struct variant",
    ];
    KINDS
        .iter()
        .filter(|kind| {
            unexpected.starts_with(**kind)
                && matches!(unexpected.as_bytes().get(kind.len()), None | Some(b' '))
        })
        .max_by_key(|kind| kind.len())
        .copied()
        .unwrap_or("a value")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Args {
        pin: u32,
        mode: Mode,
        tags: Vec<u8>,
    }

    #[derive(Debug, Deserialize)]
    enum Mode {
        Fast,
    }

    fn recorded(arguments: serde_json::Value) -> String {
        let error = Args::deserialize(&arguments).unwrap_err();
        let path = serde_path_to_error::deserialize::<_, Args>(&arguments)
            .unwrap_err()
            .path()
            .to_string();
        described(&error.to_string(), Some(&path))
    }

    #[test]
    fn recorded_messages_keep_the_field_and_type_but_not_the_value() {
        assert_eq!(
            recorded(json!({"pin": "canary-4711, expected x", "mode": "Fast", "tags": []})),
            "invalid type: string, expected u32 at `pin`"
        );
        assert_eq!(
            recorded(json!({"pin": 1, "mode": "canary-4712", "tags": []})),
            "unknown variant, expected `Fast` at `mode`"
        );
        assert_eq!(
            recorded(json!({"pin": 1, "mode": "Fast", "tags": [1, 99999]})),
            "invalid value: integer, expected u8 at `tags[1]`"
        );
        assert_eq!(
            recorded(json!({"mode": "Fast", "tags": []})),
            "missing field `pin`"
        );
        assert_eq!(
            described("not a valid email: bob@example.com", None),
            "invalid value (the message is not recorded: it may repeat the value)"
        );
    }

    #[test]
    fn recorded_messages_are_read_back_as_the_field_and_its_problem() {
        let read = |arguments| classify(&recorded(arguments));
        assert_eq!(
            read(json!({"pin": "4711", "mode": "Fast", "tags": []})),
            (Some("pin".into()), ParamProblem::WrongType)
        );
        assert_eq!(
            read(json!({"mode": "Fast", "tags": []})),
            (Some("pin".into()), ParamProblem::Missing)
        );
        assert_eq!(
            read(json!({"pin": 1, "mode": "Slow", "tags": []})),
            (Some("mode".into()), ParamProblem::InvalidValue)
        );
        assert_eq!(
            read(json!({"pin": 1, "mode": "Fast", "tags": [1, 99999]})),
            (Some("tags[]".into()), ParamProblem::InvalidValue)
        );
        assert_eq!(
            classify("missing field `limit` at `filters`"),
            (Some("filters.limit".into()), ParamProblem::Missing)
        );
        assert_eq!(
            classify(&described("not a valid email: bob@example.com", None)),
            (None, ParamProblem::Other)
        );
    }
}
