//! What is recorded for arguments that do not deserialize: serde's message without the value it
//! repeats (`invalid type: string "hunter2", expected u32` becomes `invalid type: string,
//! expected u32 at `pin``), so a secret sent in the wrong field is not stored or exported.

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
}
