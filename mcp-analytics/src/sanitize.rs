//! Removes secrets from parameters, results and error messages before anything is stored or
//! exported: values under sensitive keys, and values that look like secrets wherever they appear.

use std::borrow::Cow;

use serde_json::Value;

use crate::UserDetails;

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
    user_details: UserDetails,
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
            user_details: UserDetails::default(),
        }
    }
}

impl Sanitizer {
    /// How callers' email and name are stored (default [`UserDetails::Masked`]).
    pub fn user_details(mut self, details: UserDetails) -> Self {
        self.user_details = details;
        self
    }

    /// The email as stored: masked, in full or not at all (see [`UserDetails`]).
    pub fn user_email(&self, email: &str) -> Option<String> {
        self.user_details.email(email)
    }

    /// The display name as stored: masked, in full or not at all (see [`UserDetails`]).
    pub fn user_name(&self, name: &str) -> Option<String> {
        self.user_details.name(name)
    }

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
        let extra: Vec<String> = extra.iter().map(|key| normalize_key(key)).collect();
        self.key_matches(key, &extra)
    }

    /// A redacted copy of `value`; `extra_keys` are per-tool sensitive keys.
    pub fn value(&self, value: &Value, extra_keys: &[&str]) -> Value {
        serde_json::from_str(&self.render(value, extra_keys))
            .expect("the sanitizer writes valid JSON")
    }

    /// Redacted, size-capped JSON text of `value`.
    pub fn json_text(&self, value: &Value, extra_keys: &[&str]) -> String {
        let text = self.render(value, extra_keys);
        if text.len() <= self.max_total_bytes {
            return text;
        }
        // The cut text becomes a JSON string; escaping can make it longer, so shrink until the
        // whole thing fits.
        let mut budget = self.max_total_bytes;
        loop {
            let cut = truncate_at_char(&text, budget);
            let mut out = String::with_capacity(budget + 48);
            let marker = format!("{cut}…[TRUNCATED {} bytes]", text.len() - cut.len());
            write_json_string(&mut out, &marker);
            if out.len() <= self.max_total_bytes || budget == 0 {
                return out;
            }
            budget = budget.saturating_sub(out.len() - self.max_total_bytes);
        }
    }

    /// Free text (an error message) with secret-looking values replaced, length-capped.
    pub fn text(&self, text: &str) -> String {
        self.clean_text(text).into_owned()
    }

    /// Writes `value` as JSON, redacting as it goes (one pass, no intermediate `Value`).
    fn render(&self, value: &Value, extra_keys: &[&str]) -> String {
        let extra: Vec<String> = extra_keys.iter().map(|key| normalize_key(key)).collect();
        let mut out = String::with_capacity(128);
        self.write(&mut out, value, &extra, 0);
        out
    }

    fn write(&self, out: &mut String, value: &Value, extra: &[String], depth: usize) {
        if depth >= self.max_depth && (value.is_object() || value.is_array()) {
            write_json_string(out, "[TRUNCATED: too deep]");
            return;
        }
        match value {
            Value::Object(map) => {
                out.push('{');
                for (index, (key, item)) in map.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    // Keys can be data too (a map keyed by card number or token).
                    write_json_string(out, &self.clean_text(key));
                    out.push(':');
                    if self.key_matches(key, extra) {
                        write_json_string(out, REDACTED);
                    } else {
                        self.write(out, item, extra, depth + 1);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    self.write(out, item, extra, depth + 1);
                }
                out.push(']');
            }
            Value::String(text) => write_json_string(out, &self.clean_text(text)),
            Value::Number(number)
                if number_may_be_card(number) && looks_like_card(&number.to_string()) =>
            {
                write_json_string(out, REDACTED);
            }
            // `Number`'s `Display` formats floats differently from its serializer.
            Value::Number(number) => {
                out.push_str(&serde_json::to_string(number).unwrap_or_default())
            }
            Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
            Value::Null => out.push_str("null"),
        }
    }

    /// `key` normalised (without allocating for ordinary keys) contains a sensitive key.
    fn key_matches(&self, key: &str, extra: &[String]) -> bool {
        let mut buffer = [0u8; 64];
        let owned;
        let normalized = if key.len() <= buffer.len() {
            let mut length = 0;
            for byte in key.bytes().filter(|byte| !is_key_separator(*byte)) {
                buffer[length] = byte.to_ascii_lowercase();
                length += 1;
            }
            std::str::from_utf8(&buffer[..length]).unwrap_or("")
        } else {
            owned = normalize_key(key);
            owned.as_str()
        };
        self.keys
            .iter()
            .chain(extra)
            .any(|sensitive| contains_bytes(normalized.as_bytes(), sensitive.as_bytes()))
    }

    /// `text` with secret-looking values replaced and its length capped; borrowed when clean.
    fn clean_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        // Tokens first: a card-like digit run inside a token would otherwise split it.
        if self.may_hold_token(&text) {
            text = Cow::Owned(self.redact_tokens(&text));
        }
        if text.bytes().filter(u8::is_ascii_digit).count() >= 13 {
            text = Cow::Owned(redact_card_numbers(&text));
        }
        match text.char_indices().nth(self.max_string_chars) {
            None => text,
            Some((cut, _)) => {
                let dropped = text[cut..].chars().count();
                Cow::Owned(format!("{}…[TRUNCATED {dropped} chars]", &text[..cut]))
            }
        }
    }

    /// A cheap test that rules out most text before tokenising it.
    fn may_hold_token(&self, text: &str) -> bool {
        const TRIGGERS: &[&str] = &["eyJ", "AKIA", "ASIA"];
        TOKEN_PREFIXES
            .iter()
            .chain(TRIGGERS)
            .any(|trigger| contains_bytes(text.as_bytes(), trigger.as_bytes()))
            || self
                .value_prefixes
                .iter()
                .any(|prefix| contains_bytes(text.as_bytes(), prefix.as_bytes()))
            || contains_ignore_ascii_case(text, "bearer")
            || contains_ignore_ascii_case(text, "basic")
    }

    fn redact_tokens(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut redact_next = false;
        for piece in split_keeping_separators(text) {
            if piece.chars().all(is_separator) {
                out.push_str(piece);
                continue;
            }
            // A value redacted before (`[REDACTED]`) stays as it is: sanitizing is idempotent.
            if piece == REDACTED_WORD {
                out.push_str(piece);
                redact_next = false;
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
        TOKEN_PREFIXES
            .iter()
            .copied()
            .chain(self.value_prefixes.iter().map(String::as_str))
            .any(|prefix| token.len() > prefix.len() + 4 && token.starts_with(prefix))
            || is_jwt(token)
            || is_aws_access_key(token)
    }
}

/// [`REDACTED`] without its brackets (which are separators), as a token of free text.
const REDACTED_WORD: &str = "REDACTED";

/// Prefixes of API keys and tokens redacted wherever they appear.
const TOKEN_PREFIXES: &[&str] = &[
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "sk-", "xoxb-", "xoxp-", "ghp_",
];

/// ASCII-lowercase without `_`, `-`, `.` or spaces: `API-KEY`, `api_key` and `apiKey` all
/// become `apikey`.
fn normalize_key(key: &str) -> String {
    let bytes: Vec<u8> = key
        .bytes()
        .filter(|byte| !is_key_separator(*byte))
        .map(|byte| byte.to_ascii_lowercase())
        .collect();
    String::from_utf8(bytes).unwrap_or_default()
}

fn is_key_separator(byte: u8) -> bool {
    matches!(byte, b'_' | b'-' | b'.' | b' ')
}

/// Substring search tuned for the short needles and texts redaction deals with (the standard
/// two-way search spends more on setup than on searching here).
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && haystack[..=haystack.len() - needle.len()]
            .iter()
            .enumerate()
            .any(|(index, &byte)| byte == first && haystack[index + 1..].starts_with(rest))
}

fn contains_ignore_ascii_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Integers of 13 digits or more (the only numbers that can be card numbers).
fn number_may_be_card(number: &serde_json::Number) -> bool {
    number.as_u64().is_some_and(|n| n >= 1_000_000_000_000)
        || number.as_i64().is_some_and(|n| n <= -1_000_000_000_000)
}

/// Writes `text` as a JSON string exactly as `serde_json` does.
fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{byte:04x}"));
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
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

    #[test]
    fn sanitizing_a_redacted_bearer_credential_again_changes_nothing() {
        // Found by fuzz/ (target `sanitize`): the word after `Bearer` was redacted again on
        // every pass, `[REDACTED]` becoming `[[REDACTED]]`, `[[[REDACTED]]]`, ...
        let sanitizer = Sanitizer::default();
        let once = sanitizer.text("Authorization: Bearer abc.def");
        assert_eq!(once, "Authorization: Bearer [REDACTED]");
        assert_eq!(sanitizer.text(&once), once);
        let json = sanitizer.value(&json!({"header": "basic dXNlcjpwdw=="}), &[]);
        assert_eq!(sanitizer.value(&json, &[]), json);
    }

    #[test]
    fn secrets_in_object_keys_are_redacted_too() {
        // Found by fuzz/ (target `sanitize`): keys were written as they came, so a map keyed by
        // card number or token (`{"4242…": "visa"}`) was stored verbatim.
        let sanitizer = Sanitizer::default();
        let input = json!({
            "cards": {"4242 4242 4242 4242": "visa"},
            "by_key": {"sk_live_51Habcdefghijkl": 1, (JWT): 2},
            "plain key": "kept"
        });
        let text = sanitizer.json_text(&input, &[]);
        for secret in ["4242 4242", "sk_live_", "eyJ"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains(r#""plain key":"kept""#), "{text}");
        let out = sanitizer.value(&input, &[]);
        assert_eq!(out["cards"][REDACTED], "visa");
        assert_eq!(sanitizer.value(&out, &[]), out);
    }

    #[test]
    fn a_jwt_holding_a_card_like_digit_run_is_redacted_whole() {
        // Found by fuzz/ (target `sanitize`): card numbers were replaced first, which cut the
        // token in pieces (`[REDACTED]` brings separators), so it was no longer seen as a JWT
        // and its signature survived.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIi_4242424242424242_x.c2lnbmF0dXJlX3NpZ25hdHVyZQ";
        let out = Sanitizer::default().text(&format!("token {jwt} end"));
        assert_eq!(out, "token [REDACTED] end");
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
        json_value_from("[a-zA-Z_-]{0,12}", ".{0,40}")
    }

    fn json_value_from(keys: &'static str, strings: &'static str) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-999_999_999_999i64..999_999_999_999).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            strings.prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6)
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
        fn clean_values_are_written_exactly_as_serde_json_does(
            value in json_value_from("[a-h]{1,6}", "[a-z \"\\\\\n\t\u{1}\u{1f}é€/]{0,20}")
        ) {
            prop_assert_eq!(Sanitizer::default().json_text(&value, &[]), value.to_string());
        }

        #[test]
        fn sanitizing_is_total_bounded_and_idempotent(value in json_value()) {
            let sanitizer = Sanitizer::default().max_total_bytes(512);
            let once = sanitizer.value(&value, &[]);
            prop_assert_eq!(sanitizer.value(&once, &[]), once.clone());
            let text = sanitizer.json_text(&value, &[]);
            prop_assert!(text.len() <= 512, "{} bytes", text.len());
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
        }
    }
}
