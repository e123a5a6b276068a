//! Removes secrets from parameters, results and error messages before anything is stored or
//! exported: values under sensitive keys, and values that look like secrets wherever they appear.

use serde_json::{Map, Value};

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// The seed's sensitive key list, matched as substrings of normalised keys.
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "apiKey",
    "creditCard",
    "ssn",
    "token",
    "secret",
    "private",
    "auth",
];

/// Rules and limits for redaction. Cheap to clone; build once, share.
#[derive(Clone)]
pub struct Sanitizer {
    keys: Vec<String>,
    value_prefixes: Vec<String>,
    max_depth: usize,
    max_string_chars: usize,
    max_total_bytes: usize,
}

impl Default for Sanitizer {
    fn default() -> Self {
        Self {
            keys: DEFAULT_SENSITIVE_KEYS
                .iter()
                .map(|key| normalize_key(key))
                .collect(),
            value_prefixes: Vec::new(),
            max_depth: 16,
            max_string_chars: 1024,
            max_total_bytes: 16 * 1024,
        }
    }
}

impl Sanitizer {
    /// Also redact values under keys containing `key` (case and `_`/`-`/`.` are ignored).
    pub fn redact_key(mut self, key: &str) -> Self {
        self.keys.push(normalize_key(key));
        self
    }

    /// Also redact any token that starts with `prefix` (e.g. `ghp_` for GitHub tokens).
    pub fn redact_value_prefix(mut self, prefix: &str) -> Self {
        self.value_prefixes.push(prefix.to_owned());
        self
    }

    /// Nesting deeper than this is replaced by a `[TRUNCATED]` marker.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Strings longer than this many characters are cut, with a marker.
    pub fn max_string_chars(mut self, chars: usize) -> Self {
        self.max_string_chars = chars;
        self
    }

    /// Serialized JSON longer than this many bytes is cut, with a marker.
    pub fn max_total_bytes(mut self, bytes: usize) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// Whether a key (in any case or separator style) names sensitive data.
    pub fn is_sensitive_key(&self, key: &str, extra: &[&str]) -> bool {
        let key = normalize_key(key);
        self.keys
            .iter()
            .any(|sensitive| key.contains(sensitive.as_str()))
            || extra
                .iter()
                .any(|sensitive| key.contains(normalize_key(sensitive).as_str()))
    }

    /// A redacted copy of `value`; `extra_keys` are per-tool sensitive keys.
    pub fn value(&self, value: &Value, extra_keys: &[&str]) -> Value {
        self.walk(value, extra_keys, 0)
    }

    /// Redacted, size-capped JSON text of `value`.
    pub fn json_text(&self, value: &Value, extra_keys: &[&str]) -> String {
        let text = self.value(value, extra_keys).to_string();
        if text.len() <= self.max_total_bytes {
            return text;
        }
        let cut = truncate_at_char(&text, self.max_total_bytes);
        Value::String(format!(
            "{cut}…[TRUNCATED {} bytes]",
            text.len() - cut.len()
        ))
        .to_string()
    }

    /// Free text (an error message) with secret-looking values replaced, length-capped.
    pub fn text(&self, text: &str) -> String {
        let redacted = self.redact_text(text);
        self.cap_string(redacted)
    }

    fn walk(&self, value: &Value, extra: &[&str], depth: usize) -> Value {
        if depth >= self.max_depth && (value.is_object() || value.is_array()) {
            return Value::String("[TRUNCATED: too deep]".into());
        }
        match value {
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, item) in map {
                    let item = if self.is_sensitive_key(key, extra) {
                        Value::String(REDACTED.into())
                    } else {
                        self.walk(item, extra, depth + 1)
                    };
                    out.insert(key.clone(), item);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.walk(item, extra, depth + 1))
                    .collect(),
            ),
            Value::String(text) => Value::String(self.text(text)),
            Value::Number(number) if looks_like_card(&number.to_string()) => {
                Value::String(REDACTED.into())
            }
            other => other.clone(),
        }
    }

    fn cap_string(&self, text: String) -> String {
        let Some((cut, _)) = text.char_indices().nth(self.max_string_chars) else {
            return text;
        };
        let dropped = text[cut..].chars().count();
        format!("{}…[TRUNCATED {dropped} chars]", &text[..cut])
    }

    fn redact_text(&self, text: &str) -> String {
        let text = redact_card_numbers(text);
        let mut out = String::with_capacity(text.len());
        let mut redact_next = false;
        for piece in split_keeping_separators(&text) {
            if piece.chars().all(is_separator) {
                out.push_str(piece);
                continue;
            }
            if redact_next || self.is_secret_token(piece) {
                out.push_str(REDACTED);
            } else {
                out.push_str(piece);
            }
            redact_next =
                piece.eq_ignore_ascii_case("bearer") || piece.eq_ignore_ascii_case("basic");
        }
        out
    }

    fn is_secret_token(&self, token: &str) -> bool {
        const PREFIXES: &[&str] = &[
            "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "sk-", "xoxb-", "xoxp-",
            "ghp_",
        ];
        PREFIXES
            .iter()
            .copied()
            .chain(self.value_prefixes.iter().map(String::as_str))
            .any(|prefix| token.len() > prefix.len() + 4 && token.starts_with(prefix))
            || is_jwt(token)
            || is_aws_access_key(token)
    }
}

/// Lowercase without `_`, `-`, `.` or spaces: `API-KEY`, `api_key` and `apiKey` all become `apikey`.
fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | ','
                | ';'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '<'
                | '>'
                | '='
                | ':'
                | '`'
        )
}

/// Splits into alternating runs of separators and tokens, keeping both.
fn split_keeping_separators(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_separator = None;
    for (index, c) in text.char_indices() {
        let separator = is_separator(c);
        if in_separator.is_some_and(|previous| previous != separator) {
            pieces.push(&text[start..index]);
            start = index;
        }
        in_separator = Some(separator);
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && token.starts_with("eyJ")
        && parts.iter().all(|part| {
            part.len() >= 4
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

fn is_aws_access_key(token: &str) -> bool {
    token.len() == 20
        && ["AKIA", "ASIA"]
            .iter()
            .any(|prefix| token.starts_with(prefix))
        && token
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn looks_like_card(candidate: &str) -> bool {
    let digits: Vec<u8> = candidate
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    (13..=19).contains(&digits.len()) && luhn_valid(&digits)
}

/// Replaces runs of digits (with single spaces or dashes between groups) that form a
/// Luhn-valid 13–19 digit card number.
fn redact_card_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    let mut copied = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_digit() || (index > 0 && bytes[index - 1].is_ascii_alphanumeric())
        {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = index;
        let mut cursor = index;
        while cursor < bytes.len() {
            if bytes[cursor].is_ascii_digit() {
                cursor += 1;
                end = cursor;
            } else if matches!(bytes[cursor], b' ' | b'-')
                && cursor + 1 < bytes.len()
                && bytes[cursor + 1].is_ascii_digit()
            {
                cursor += 1;
            } else {
                break;
            }
        }
        let run = &text[start..end];
        let boundary = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if boundary && looks_like_card(run) {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        index = end.max(start + 1);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn redacts_sensitive_keys_in_any_style_and_depth() {
        let input = json!({
            "api_key": "a", "API-KEY": "b", "x-auth-token": "c", "privateKey": {"n": 1},
            "nested": [{"Password": "d", "ok": "visible"}], "author_count": 3, "plain": "kept"
        });
        let out = Sanitizer::default().value(&input, &[]);
        assert_eq!(out["api_key"], REDACTED);
        assert_eq!(out["API-KEY"], REDACTED);
        assert_eq!(out["x-auth-token"], REDACTED);
        assert_eq!(out["privateKey"], REDACTED);
        assert_eq!(out["nested"][0]["Password"], REDACTED);
        assert_eq!(out["nested"][0]["ok"], "visible");
        assert_eq!(out["plain"], "kept");
    }

    #[test]
    fn redacts_secret_looking_values_anywhere() {
        let sanitizer = Sanitizer::default();
        let input = json!({
            "note": "card 4242 4242 4242 4242 expires soon",
            "dashed": "4000-0566-5566-5556",
            "number": 4242424242424242u64,
            "header": format!("Bearer {JWT}"),
            "jwt": JWT,
            "stripe": "use sk_live_51Habcdefghijkl please",
            "aws": "AKIAIOSFODNN7EXAMPLE",
            "not_card": "order 1234567890123 shipped",
        });
        let text = sanitizer.value(&input, &[]).to_string();
        for secret in [
            "4242 4242",
            "4000-0566",
            "4242424242424242",
            "eyJ",
            "sk_live_",
            "AKIAIOSF",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(
            text.contains("order 1234567890123 shipped"),
            "non-Luhn numbers stay: {text}"
        );
        assert!(text.contains("card [REDACTED] expires soon"), "{text}");
    }

    #[test]
    fn extra_keys_and_prefixes() {
        let sanitizer = Sanitizer::default()
            .redact_key("document")
            .redact_value_prefix("ghp_");
        let out = sanitizer.value(
            &json!({"Document": "x", "memo": "ghp_abcdefghijkl"}),
            &["memo_x"],
        );
        assert_eq!(out, json!({"Document": REDACTED, "memo": REDACTED}));
        let per_tool = Sanitizer::default().value(&json!({"document": "x"}), &["document"]);
        assert_eq!(per_tool["document"], REDACTED);
    }

    #[test]
    fn caps_depth_strings_and_total_size() {
        let sanitizer = Sanitizer::default()
            .max_depth(2)
            .max_string_chars(5)
            .max_total_bytes(40);
        let deep = sanitizer.value(&json!({"a": {"b": {"c": 1}}}), &[]);
        assert_eq!(deep["a"]["b"], "[TRUNCATED: too deep]");
        assert_eq!(sanitizer.text("abcdefgh"), "abcde…[TRUNCATED 3 chars]");
        let big = sanitizer.json_text(
            &json!(["aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff", "gggg"]),
            &[],
        );
        assert!(
            big.contains("TRUNCATED") && serde_json::from_str::<Value>(&big).is_ok(),
            "{big}"
        );
    }

    fn card_number() -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, 15).prop_map(|mut digits| {
            digits.insert(0, 4);
            let check = (0..10).find(|c| {
                let mut all = digits.clone();
                all.push(*c);
                luhn_valid(&all)
            });
            digits.push(check.unwrap());
            digits.iter().map(|d| char::from(b'0' + d)).collect()
        })
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z_-]{0,12}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_under_sensitive_keys_never_survive(
            prefix in "[a-z]{0,4}", sep in "[-_.]?", upper in any::<bool>(), secret in "[a-zA-Z0-9]{8,20}",
            base in prop::sample::select(DEFAULT_SENSITIVE_KEYS),
        ) {
            let mut key = format!("{prefix}{sep}{base}");
            if upper { key = key.to_uppercase(); }
            let input = json!({"outer": [{ key: secret.clone() }]});
            let out = Sanitizer::default().json_text(&input, &[]);
            prop_assert!(!out.contains(&secret), "{} leaked: {}", secret, out);
        }

        #[test]
        fn card_numbers_never_survive(card in card_number(), before in "[a-z ]{0,10}", after in "[a-z ]{0,10}") {
            let text = format!("{before} {card} {after}");
            let out = Sanitizer::default().json_text(&json!({"memo": text}), &[]);
            prop_assert!(!out.contains(&card), "{} leaked: {}", card, out);
        }

        #[test]
        fn sanitizing_is_total_bounded_and_idempotent(value in json_value()) {
            let sanitizer = Sanitizer::default().max_total_bytes(512);
            let once = sanitizer.value(&value, &[]);
            prop_assert_eq!(sanitizer.value(&once, &[]), once.clone());
            let text = sanitizer.json_text(&value, &[]);
            prop_assert!(text.len() <= 512 + 64, "{} bytes", text.len());
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
        }
    }
}
