//! Removes secrets from parameters, results and error messages before anything is stored or
//! exported: values under sensitive keys ([`KeyRule`]), values that look like secrets wherever
//! they appear in text (tokens, URL passwords, `key=value` pairs, private keys, card numbers),
//! and strings that are themselves JSON, which are sanitized as JSON.

mod cards;
mod keys;
mod text;

use std::{borrow::Cow, ops::Range};

use serde_json::Value;

pub use keys::{DEFAULT_KEY_RULES, KeyRule};

use crate::UserDetails;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// The sensitive key names of the TypeScript SDK this crate grew from, matched as substrings of normalised keys; all of them are in
/// [`DEFAULT_KEY_RULES`], which the default [`Sanitizer`] uses.
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
    keys: Vec<keys::Compiled>,
    value_prefixes: Vec<String>,
    max_depth: usize,
    max_string_chars: usize,
    max_total_bytes: usize,
    user_details: UserDetails,
}

impl Default for Sanitizer {
    fn default() -> Self {
        Self {
            keys: DEFAULT_KEY_RULES.iter().map(KeyRule::normalized).collect(),
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
    pub fn redact_key(self, key: &str) -> Self {
        self.redact_key_rule(KeyRule::Contains(key.to_owned().into()))
    }

    /// Also redact values under keys that have `word` as one of their words (`pin` matches
    /// `user_pin` and `pinCode`, not `pinned`); see [`KeyRule::Word`].
    pub fn redact_key_word(self, word: &str) -> Self {
        self.redact_key_rule(KeyRule::Word(word.to_owned().into()))
    }

    /// Also redact values under keys matching `rule`.
    pub fn redact_key_rule(mut self, rule: KeyRule) -> Self {
        self.keys.push(rule.normalized());
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

    /// Whether a key (in any case or separator style) names sensitive data; `extra` are more
    /// names matched as substrings (a tool's `redact` list).
    pub fn is_sensitive_key(&self, key: &str, extra: &[&str]) -> bool {
        let extra = extra_rules(extra);
        self.rules(&extra).matches(key, false)
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

    /// Free text (an error message) with secret-looking values replaced, length-capped. Text that
    /// is a JSON object or array is sanitized as JSON (and stored compact).
    pub fn text(&self, text: &str) -> String {
        self.text_with_keys(text, &[])
    }

    /// [`Sanitizer::text`] with per-tool sensitive keys (a tool's `redact` list), which apply to
    /// `key=value` pairs and to text that is JSON.
    pub fn text_with_keys(&self, text: &str, extra_keys: &[&str]) -> String {
        let extra = extra_rules(extra_keys);
        self.clean_text(text, &self.rules(&extra), 0).into_owned()
    }

    fn rules<'a>(&'a self, extra: &'a [keys::Compiled]) -> keys::KeyRules<'a> {
        keys::KeyRules {
            rules: &self.keys,
            extra,
        }
    }

    /// Writes `value` as JSON, redacting as it goes (one pass, no intermediate `Value`).
    fn render(&self, value: &Value, extra_keys: &[&str]) -> String {
        let extra = extra_rules(extra_keys);
        let mut out = String::with_capacity(128);
        self.write(&mut out, value, &self.rules(&extra), 0);
        out
    }

    fn write(&self, out: &mut String, value: &Value, keys: &keys::KeyRules<'_>, depth: usize) {
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
                    write_json_string(out, &self.redact_spans(key, keys));
                    out.push(':');
                    if keys.matches(key, false) {
                        write_json_string(out, REDACTED);
                    } else {
                        self.write(out, item, keys, depth + 1);
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
                    self.write(out, item, keys, depth + 1);
                }
                out.push(']');
            }
            Value::String(text) => write_json_string(out, &self.clean_text(text, keys, depth)),
            Value::Number(number)
                if number_may_be_card(number) && cards::looks_like_card(&number.to_string()) =>
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

    /// `text` with secrets replaced and its length capped; borrowed when clean. `depth` is the
    /// nesting `text` sits at (JSON inside it counts on from there).
    fn clean_text<'a>(
        &self,
        text: &'a str,
        keys: &keys::KeyRules<'_>,
        depth: usize,
    ) -> Cow<'a, str> {
        let text = match self.json_inside(text, keys, depth) {
            Some(json) => Cow::Owned(json),
            None => self.redact_spans(text, keys),
        };
        match text.char_indices().nth(self.max_string_chars) {
            None => text,
            Some((cut, _)) => {
                let dropped = text[cut..].chars().count();
                Cow::Owned(format!("{}…[TRUNCATED {dropped} chars]", &text[..cut]))
            }
        }
    }

    /// `text` sanitized as JSON if it is a JSON object or array (only text that starts with `{`
    /// or `[` and ends with `}` or `]` is parsed).
    fn json_inside(&self, text: &str, keys: &keys::KeyRules<'_>, depth: usize) -> Option<String> {
        let trimmed = text.trim();
        let (first, last) = (trimmed.bytes().next()?, trimmed.bytes().last()?);
        if !matches!((first, last), (b'{', b'}') | (b'[', b']')) {
            return None;
        }
        let value: Value = serde_json::from_str(trimmed).ok()?;
        let mut out = String::with_capacity(trimmed.len());
        self.write(&mut out, &value, keys, depth + 1);
        Some(out)
    }

    /// `text` with every secret-looking span replaced by [`REDACTED`].
    fn redact_spans<'a>(&self, text: &'a str, keys: &keys::KeyRules<'_>) -> Cow<'a, str> {
        let mut spans: Vec<Range<usize>> = Vec::new();
        text::secret_spans(text, keys, &self.value_prefixes, &mut spans);
        if cards::may_hold_card(text) {
            cards::card_spans(text, &mut spans);
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable_by_key(|span| span.start);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for span in spans {
            if span.end <= copied {
                continue;
            }
            if span.start >= copied {
                out.push_str(&text[copied..span.start]);
                out.push_str(REDACTED);
            }
            copied = span.end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// A tool's `redact` names as substring rules.
fn extra_rules(extra_keys: &[&str]) -> Vec<keys::Compiled> {
    extra_keys
        .iter()
        .map(|key| KeyRule::Contains((*key).to_owned().into()).normalized())
        .collect()
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
    fn the_text_copy_of_a_structured_result_is_redacted_like_the_structured_one() {
        let secret = r#"{"api_key":"k-live-123456","password":"hunter2","document":"body-77"}"#;
        let result = json!({
            "content": [{"type": "text", "text": secret}],
            "structuredContent": serde_json::from_str::<Value>(secret).unwrap(),
            "isError": false
        });
        let stored = Sanitizer::default().json_text(&result, &["document"]);
        for leaked in ["k-live-123456", "hunter2", "body-77"] {
            assert!(!stored.contains(leaked), "{leaked} leaked: {stored}");
        }
        let message = Sanitizer::default().text_with_keys(&format!("  {secret}\n"), &["document"]);
        assert_eq!(
            serde_json::from_str::<Value>(&message).unwrap(),
            json!({"api_key": REDACTED, "password": REDACTED, "document": REDACTED})
        );
        let nested = json!({"outer": json!({"inner": secret}).to_string()}).to_string();
        let twice = Sanitizer::default().text(&nested);
        assert!(!twice.contains("hunter2"), "{twice}");
    }

    #[test]
    fn secrets_in_the_issue_shapes_are_redacted_in_free_text() {
        let cases = [
            (format!("token {JWT}."), JWT.to_owned()),
            (format!("token {JWT}!"), JWT.to_owned()),
            (format!("/cb?id_token={JWT}&x=1"), JWT.to_owned()),
            ("GET https://api.example.com/v1/sk_live_51HabcdefQ/x".into(), "sk_live_51HabcdefQ".into()),
            ("the key is AKIAIOSFODNN7EXAMPLE.".into(), "AKIAIOSFODNN7EXAMPLE".into()),
            ("postgres://admin:hunter2@db/prod".into(), "hunter2".into()),
            ("/login?user=bob&password=pa55word&next=/".into(), "pa55word".into()),
            ("https://x.test/?api_key=k3y-value-1&a=1".into(), "k3y-value-1".into()),
            ("https://x.test/?sig=s1gnature-v&code=c0de-value".into(), "s1gnature-v".into()),
            ("https://x.test/?sig=s1gnature-v&code=c0de-value".into(), "c0de-value".into()),
            ("Authorization: Token t0ken-value-9".into(), "t0ken-value-9".into()),
            ("authorization: Digest username=\"bob\", response=\"r3sp\"".into(), "r3sp".into()),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----".into(),
                "b3BlbnNzaC1rZXktdjE".into(),
            ),
            ("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a".into(), "ghp_16C7e42F292c6912E7710c838347Ae178B4a".into()),
            ("gho_16C7e42F292c6912E7710c838347Ae178B4a".into(), "gho_16C7e42F292c6912E7710c838347Ae178B4a".into()),
            ("(github_pat_11ABCDEFG0_abcdefghijklmnop)".into(), "github_pat_11ABCDEFG0_abcdefghijklmnop".into()),
            ("slack: xoxp-1234-5678-abcdefgh".into(), "xoxp-1234-5678-abcdefgh".into()),
            ("maps AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI.".into(), "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI".into()),
            ("4111 1111 1111 1111 12/26".into(), "4111 1111 1111 1111".into()),
            ("order 12345 4242424242424242".into(), "4242424242424242".into()),
            ("4242.4242.4242.4242".into(), "4242.4242.4242.4242".into()),
        ];
        let sanitizer = Sanitizer::default();
        for (text, secret) in cases {
            let stored = sanitizer.text(&text);
            assert!(
                !stored.contains(&secret),
                "{secret} leaked from {text:?}: {stored:?}"
            );
            let json = sanitizer.json_text(&json!({"memo": text}), &[]);
            assert!(
                !json.contains(&secret),
                "{secret} leaked from {text:?}: {json}"
            );
        }
    }

    #[test]
    fn the_issue_key_names_are_redacted_and_ordinary_keys_kept() {
        let secret_keys = [
            "passwd",
            "pwd",
            "passphrase",
            "pin",
            "otp",
            "mfa_code",
            "cvv",
            "cvc",
            "card_number",
            "cardNumber",
            "cookie",
            "set-cookie",
            "credentials",
            "connection_string",
            "database_url",
            "dsn",
            "client_assertion",
            "jwt",
        ];
        let ordinary = [
            "pinned", "option", "shipping", "spinner", "code", "city", "topping",
        ];
        let input: serde_json::Map<String, Value> = secret_keys
            .iter()
            .chain(&ordinary)
            .map(|key| (key.to_string(), json!(format!("value-of-{key}"))))
            .collect();
        let out = Sanitizer::default().value(&Value::Object(input), &[]);
        for key in secret_keys {
            assert_eq!(out[key], REDACTED, "{key}");
        }
        for key in ordinary {
            assert_eq!(out[key], format!("value-of-{key}"), "{key}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        let sanitizer = Sanitizer::default();
        for text in [
            "upstream timed out after 30s (attempt 2 of 3)",
            "see https://example.com/docs?page=2&lang=en#top",
            "uses sk-learn, desk-lamp and task-force",
            "meeting at 12:30 on 2026-12-03; code: 42",
            "{not json} [nor this",
            "pinned shipping options",
        ] {
            assert_eq!(sanitizer.text(text), text);
        }
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
        card_number_of(17)
    }

    /// A Luhn-valid card number of `length` digits starting with 4.
    fn card_number_of(length: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, length - 2).prop_map(|mut digits| {
            digits.insert(0, 4);
            let check = (0..10).find(|c| {
                let mut all = digits.clone();
                all.push(*c);
                cards::luhn_valid(all.into_iter())
            });
            digits.push(check.unwrap());
            digits.iter().map(|d| char::from(b'0' + d)).collect()
        })
    }

    /// Tokens in every built-in shape.
    fn secret_token() -> impl Strategy<Value = String> {
        let body = "[A-Za-z0-9]{36,40}";
        prop_oneof![
            body.prop_map(|b| format!("sk_live_{b}")),
            body.prop_map(|b| format!("sk-proj-{b}")),
            body.prop_map(|b| format!("ghp_{b}")),
            body.prop_map(|b| format!("github_pat_{b}")),
            body.prop_map(|b| format!("xoxb-{b}")),
            "[A-Za-z0-9_-]{35}".prop_map(|b| format!("AIza{b}")),
            "[A-Z0-9]{16}".prop_map(|b| format!("AKIA{b}")),
            (
                "[A-Za-z0-9_-]{10,40}",
                "[A-Za-z0-9_-]{10,40}",
                "[A-Za-z0-9_-]{10,40}"
            )
                .prop_map(|(h, p, s)| format!("eyJ{h}.eyJ{p}.{s}")),
        ]
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
        fn card_numbers_next_to_digits_dates_and_dots_never_survive(
            card in card_number_of(16),
            grouping in prop::sample::select(vec!["", " ", "-", "."]),
            before in "[0-9]{1,6}", before_sep in prop::sample::select(vec![" ", "-", ".", "/", ", "]),
            after in "[0-9]{1,6}", after_sep in prop::sample::select(vec![" ", "-", ".", "/", ", "]),
            date in prop::sample::select(vec!["", " 12/26", " exp 2026-12-03", " 01.28"]),
        ) {
            let formatted = if grouping.is_empty() {
                card.clone()
            } else {
                card.as_bytes().chunks(4).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect::<Vec<_>>().join(grouping)
            };
            let text = format!("{before}{before_sep}{formatted}{after_sep}{after}{date}");
            let out = Sanitizer::default().json_text(&json!({"memo": text}), &[]);
            prop_assert!(!out.contains(&formatted), "{} leaked: {}", formatted, out);
        }

        #[test]
        fn secrets_in_urls_json_strings_and_sentences_never_survive(
            secret in secret_token(),
            before in prop::sample::select(vec!["", " ", "see ", "/v1/", "?x=", "&id_token=", "(", "\"", "'", "=", ": ", "key=", "\n"]),
            after in prop::sample::select(vec!["", ".", "!", ",", "?", "&y=1", "/charges", ")", "\"", ";", ". Next", "\n"]),
            nesting in 0usize..4,
        ) {
            let mut text = format!("{before}{secret}{after}");
            for _ in 0..nesting {
                text = json!({"message": text}).to_string();
            }
            let out = Sanitizer::default().json_text(&json!({"memo": text}), &[]);
            prop_assert!(!out.contains(&secret), "{} leaked: {}", secret, out);
            let out = Sanitizer::default().text(&text);
            prop_assert!(!out.contains(&secret), "{} leaked: {}", secret, out);
        }

        #[test]
        fn values_under_word_keys_never_survive_and_ordinary_keys_stay(
            word in prop::sample::select(vec!["pin", "otp", "pwd", "dsn", "jwt"]),
            other in "[a-z]{2,6}", camel in any::<bool>(), secret in "[a-zA-Z0-9]{8,20}",
        ) {
            let key = if camel {
                format!("{other}{}{}", word[..1].to_uppercase(), &word[1..])
            } else {
                format!("{other}_{word}")
            };
            let out = Sanitizer::default().json_text(&json!({ key: secret.clone() }), &[]);
            prop_assert!(!out.contains(&secret), "{} leaked: {}", secret, out);
        }

        #[test]
        fn json_in_strings_is_sanitized_at_any_nesting(
            key in prop::sample::select(vec!["password", "api_key", "cvv", "pin", "set-cookie", "Authorization"]),
            secret in "[a-zA-Z0-9]{8,20}", nesting in 1usize..5, array in any::<bool>(),
        ) {
            let mut inner = json!({ key: secret.clone() });
            if array {
                inner = json!([1, inner]);
            }
            let mut text = inner.to_string();
            for _ in 1..nesting {
                text = json!({"data": text}).to_string();
            }
            let out = Sanitizer::default().json_text(&json!({"content": [{"type": "text", "text": text}]}), &[]);
            prop_assert!(!out.contains(&secret), "{} leaked: {}", secret, out);
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
