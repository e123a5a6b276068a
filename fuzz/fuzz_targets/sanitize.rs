//! The sanitizer (`Sanitizer::text`, `json_text`, `value`) on fuzzer-chosen text and JSON:
//! never panics, `json_text` is valid JSON within `max_total_bytes`, sanitizing sanitized output
//! changes nothing (unless it was cut: see `CUT_MARKER`), and secrets planted at fuzzer-chosen places (a Luhn-valid card number,
//! `sk_live_`/`sk_test_` keys, a JWT, an AWS `AKIA` key) never come out.
//!
//! Secrets are planted on lines of their own (`\n` before and after), a boundary every rule
//! of the sanitizer has always honoured, so the target holds for later rule sets too.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_analytics::{Sanitizer, serde_json::Value};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Free text the secrets are planted into.
    text: String,
    /// Where (a byte offset, moved back to a character boundary) and which secret.
    plants: Vec<(u16, Secret)>,
    /// A key for the planted text in the JSON value (also checked for secrets).
    key: String,
    /// Limits: `max_string_chars` (from 16), `max_total_bytes` (from 64: room for the cut
    /// marker) and `max_depth`.
    limits: Option<(u16, u16, u8)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Secret {
    /// 16 digits starting with 4, Luhn-valid; grouped by 4 with spaces or dashes, or not.
    Card { digits: [u8; 14], grouping: u8 },
    /// `sk_live_` or `sk_test_` and 24 characters.
    StripeKey { live: bool, body: [u8; 24] },
    /// `eyJ…` header, payload and signature.
    Jwt {
        payload: [u8; 24],
        signature: [u8; 32],
    },
    /// `AKIA` and 16 upper-case letters or digits.
    Aws { body: [u8; 16] },
}

/// What marks a string cut at `max_string_chars` (or nesting cut at `max_depth`). Cutting is
/// not idempotent (the marker makes the text longer than the limit, so a second pass cuts
/// again), so idempotence is checked on output that was not cut.
const CUT_MARKER: &str = "[TRUNCATED";

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn pick(bytes: &[u8], alphabet: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

impl Secret {
    /// The secret as written in the text, and the strings that must not survive.
    fn render(self) -> (String, Vec<String>) {
        match self {
            Secret::Card { digits, grouping } => {
                let mut all: Vec<u8> = std::iter::once(4)
                    .chain(digits.iter().map(|d| d % 10))
                    .collect();
                let check = (0..10)
                    .find(|c| {
                        let mut with = all.clone();
                        with.push(*c);
                        luhn_valid(&with)
                    })
                    .expect("one check digit fits");
                all.push(check);
                let plain: String = all.iter().map(|d| char::from(b'0' + d)).collect();
                let written = match grouping % 3 {
                    0 => plain.clone(),
                    separator => {
                        let separator = if separator == 1 { " " } else { "-" };
                        let groups: Vec<&str> = (0..4).map(|i| &plain[i * 4..i * 4 + 4]).collect();
                        groups.join(separator)
                    }
                };
                (written.clone(), vec![written, plain])
            }
            Secret::StripeKey { live, body } => {
                let key = format!(
                    "sk_{}_{}",
                    if live { "live" } else { "test" },
                    pick(&body, ALNUM)
                );
                (key.clone(), vec![key])
            }
            Secret::Jwt { payload, signature } => {
                let jwt = format!(
                    "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                    pick(&payload, BASE64URL),
                    pick(&signature, BASE64URL)
                );
                let signature = jwt.rsplit('.').next().unwrap_or_default().to_owned();
                (jwt.clone(), vec![jwt, signature])
            }
            Secret::Aws { body } => {
                let key = format!("AKIA{}", pick(&body, UPPER_DIGITS));
                (key.clone(), vec![key])
            }
        }
    }
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            match (i % 2 == 1, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    sum % 10 == 0
}

fn char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text` with each secret inserted on a line of its own at a place in the original text (never
/// inside another planted secret); the strings that must not survive.
fn plant(text: &str, plants: &[(u16, Secret)]) -> (String, Vec<String>) {
    let mut places: Vec<(usize, Secret)> = plants
        .iter()
        .take(8)
        .map(|(at, secret)| (char_boundary(text, usize::from(*at)), *secret))
        .collect();
    // From the end, so earlier places stay where they were.
    places.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let mut planted = text.to_owned();
    let mut forbidden = Vec::new();
    for (at, secret) in places {
        let (written, must_go) = secret.render();
        planted.insert_str(at, &format!("\n{written}\n"));
        forbidden.extend(must_go);
    }
    (planted, forbidden)
}

/// No planted secret survives: a secret may appear in `output` only as often as the fuzzer
/// wrote it itself in `unplanted` (glued to other text, where no rule has to find it).
fn assert_gone(output: &str, forbidden: &[String], unplanted: &str, what: &str) {
    for secret in forbidden {
        let allowed = unplanted.matches(secret.as_str()).count();
        assert!(
            output.matches(secret.as_str()).count() <= allowed,
            "{what}: the planted secret {secret:?} survived in {output:?}"
        );
    }
}

fuzz_target!(|input: Input| {
    let mut sanitizer = Sanitizer::default();
    let mut max_total_bytes = 16 * 1024;
    if let Some((chars, bytes, depth)) = input.limits {
        max_total_bytes = usize::from(bytes).max(64);
        sanitizer = sanitizer
            .max_string_chars(usize::from(chars).max(16))
            .max_total_bytes(max_total_bytes)
            .max_depth(usize::from(depth % 33));
    }
    let (text, forbidden) = plant(&input.text, &input.plants);
    let (key, forbidden_in_key) = plant(&input.key, &input.plants[..input.plants.len().min(1)]);

    // Free text.
    let once = sanitizer.text(&text);
    assert_gone(&once, &forbidden, &input.text, "text");
    if !once.contains(CUT_MARKER) {
        assert_eq!(sanitizer.text(&once), once, "text is not idempotent");
    }

    // The text inside JSON: as a string value, inside an array, under a fuzzer-chosen key, and
    // the text itself when it is JSON.
    let mut values = vec![Value::from(text.clone())];
    let mut object = mcp_analytics::serde_json::Map::new();
    object.insert(key, Value::from(text.clone()));
    object.insert(
        "items".into(),
        Value::Array(vec![Value::from(text.clone()), Value::Null]),
    );
    values.push(Value::Object(object));
    if let Ok(parsed) = mcp_analytics::serde_json::from_str::<Value>(&input.text) {
        values.push(parsed);
    }
    let all_forbidden: Vec<String> = forbidden.iter().chain(&forbidden_in_key).cloned().collect();
    // The text appears up to three times in a value (as a key only once).
    let unplanted = format!("{0}{0}{0}{1}", input.text, input.key);
    for (index, value) in values.iter().enumerate() {
        let json = sanitizer.json_text(value, &[]);
        let reparsed: Value = mcp_analytics::serde_json::from_str(&json)
            .unwrap_or_else(|error| panic!("json_text wrote invalid JSON ({error}): {json:?}"));
        assert!(
            json.len() <= max_total_bytes,
            "json_text wrote {} bytes, more than max_total_bytes {max_total_bytes}",
            json.len()
        );
        let redacted = sanitizer.value(value, &[]);
        if index < 2 {
            assert_gone(&json, &all_forbidden, &unplanted, "json_text");
            assert_gone(&redacted.to_string(), &all_forbidden, &unplanted, "value");
        }
        if !redacted.to_string().contains(CUT_MARKER) {
            assert_eq!(
                sanitizer.value(&redacted, &[]),
                redacted,
                "value is not idempotent"
            );
        }
        drop(reparsed);
    }
});
