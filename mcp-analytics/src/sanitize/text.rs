//! Secrets inside free text, found in one scan: API keys and tokens by their shape (wherever a
//! word starts, so punctuation, URL paths and query strings do not hide them), values after
//! sensitive keys (`password=…`, `"token": "…"`, `?sig=…`, `Authorization: <scheme> …`), URL
//! passwords (`postgres://user:…@host`) and PEM private key blocks.

use std::ops::Range;

use super::keys::{KeyRules, is_line_valued, with_normalized};

/// Prefixes of API keys and tokens, with how many token characters must follow.
const TOKEN_PREFIXES: &[(&str, usize)] = &[
    ("sk_live_", 5),
    ("sk_test_", 5),
    ("rk_live_", 5),
    ("rk_test_", 5),
    ("whsec_", 5),
    // OpenAI, Anthropic and similar: long, so `sk-learn` stays.
    ("sk-", 20),
    ("ghp_", 5),
    ("gho_", 5),
    ("ghu_", 5),
    ("ghs_", 5),
    ("ghr_", 5),
    ("github_pat_", 5),
    ("glpat-", 5),
    ("xoxa-", 5),
    ("xoxb-", 5),
    ("xoxe-", 5),
    ("xoxp-", 5),
    ("xoxr-", 5),
    ("xoxs-", 5),
    ("AIza", 30),
];

/// Schemes whose next word is a credential (`Bearer eyJ…`, `Basic dXNlcjpw…`).
const CREDENTIAL_SCHEMES: &[&str] = &["bearer", "basic"];

/// Adds the byte ranges of `text` that hold secrets to `spans`.
pub(super) fn secret_spans(
    text: &str,
    keys: &KeyRules<'_>,
    value_prefixes: &[String],
    spans: &mut Vec<Range<usize>>,
) {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let found = if byte.is_ascii_alphanumeric() {
            if index > 0 && bytes[index - 1].is_ascii_alphanumeric() {
                None
            } else {
                token_at(text, index, value_prefixes)
            }
        } else {
            match byte {
                b':' if bytes[index + 1..].starts_with(b"//") => url_password(bytes, index),
                b'=' | b':' => key_value(text, index, keys),
                b'-' if bytes[index..].starts_with(b"-----BEGIN ") => private_key(text, index),
                _ => None,
            }
        };
        match found {
            Some(span) if !span.is_empty() => {
                index = span.end.max(index + 1);
                spans.push(span);
            }
            _ => index += 1,
        }
    }
}

/// A token starting at `start` (a word start): by prefix, JWT, AWS key or after a scheme word.
fn token_at(text: &str, start: usize, value_prefixes: &[String]) -> Option<Range<usize>> {
    let rest = &text.as_bytes()[start..];
    // Every built-in shape starts with one of these letters.
    if !matches!(
        rest[0],
        b's' | b'r' | b'w' | b'g' | b'x' | b'A' | b'e' | b'b' | b'B'
    ) && !value_prefixes
        .iter()
        .any(|prefix| prefix.as_bytes().first() == Some(&rest[0]))
    {
        return None;
    }
    let token_end = |from: usize| {
        from + rest[from..]
            .iter()
            .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
            .count()
    };
    for (prefix, min) in TOKEN_PREFIXES {
        if rest.starts_with(prefix.as_bytes()) {
            let end = token_end(prefix.len());
            if end - prefix.len() >= *min {
                return Some(start..start + end);
            }
        }
    }
    for prefix in value_prefixes {
        if rest.starts_with(prefix.as_bytes()) {
            let end = token_end(prefix.len());
            if end > prefix.len() + 4 {
                return Some(start..start + end);
            }
        }
    }
    if rest.starts_with(b"eyJ") {
        return jwt(rest).map(|end| start..start + end);
    }
    if (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
        && rest.len() >= 20
        && rest[4..20]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !rest.get(20).is_some_and(u8::is_ascii_alphanumeric)
    {
        return Some(start..start + 20);
    }
    let word = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if CREDENTIAL_SCHEMES
        .iter()
        .any(|scheme| rest[..word].eq_ignore_ascii_case(scheme.as_bytes()))
    {
        let spaces = rest[word..].iter().take_while(|b| **b == b' ').count();
        if spaces > 0 {
            let from = word + spaces;
            let length = rest[from..]
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && !is_value_end(**b))
                .count();
            if length > 0 && !rest[from..].starts_with(super::REDACTED.as_bytes()) {
                return Some(start + from..start + from + length);
            }
        }
    }
    None
}

/// The length of a JWT (JWS or JWE) at the start of `bytes`: base64url parts joined by dots,
/// at least two of them, a trailing dot (end of a sentence) not included.
fn jwt(bytes: &[u8]) -> Option<usize> {
    let mut end = 0;
    let mut parts = 0;
    let mut part = 0;
    for (index, byte) in bytes.iter().enumerate() {
        match byte {
            b'.' if part > 0 => {
                parts += usize::from(part >= 4);
                part = 0;
            }
            b'.' => break,
            byte if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'=') => {
                part += 1;
                end = index + 1;
            }
            _ => break,
        }
    }
    parts += usize::from(part >= 4);
    (parts >= 2 && end >= 20).then_some(end)
}

/// The password in a URL's user info (`scheme://user:password@host`); `colon` is at `://`.
fn url_password(bytes: &[u8], colon: usize) -> Option<Range<usize>> {
    let authority = colon + 3;
    let length = bytes[authority..]
        .iter()
        .take_while(|b| {
            !b.is_ascii_whitespace()
                && !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>')
        })
        .count();
    let host = &bytes[authority..authority + length];
    let at = host.iter().rposition(|b| *b == b'@')?;
    let password = host[..at].iter().position(|b| *b == b':')? + 1;
    Some(authority + password..authority + at)
}

/// The value after a sensitive key at `at` (`=` or `:`): `key=value`, `"key": "value"`,
/// `?key=value&…`, or a whole header line for `Authorization` and `Cookie`.
fn key_value(text: &str, at: usize, keys: &KeyRules<'_>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    // The key: word characters before `at`, perhaps quoted, perhaps followed by spaces.
    let mut key_end = at;
    while key_end > 0 && bytes[key_end - 1] == b' ' {
        key_end -= 1;
    }
    if key_end > 0 && matches!(bytes[key_end - 1], b'"' | b'\'') {
        key_end -= 1;
        // JSON inside a JSON string: `\"key\":`.
        if key_end > 0 && bytes[key_end - 1] == b'\\' {
            key_end -= 1;
        }
    }
    let key_start = key_end
        - bytes[..key_end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
    if key_start == key_end {
        return None;
    }
    let key = &text[key_start..key_end];
    let query = key_start > 0 && matches!(bytes[key_start - 1], b'?' | b'&' | b';');
    if !keys.matches(key, query) {
        return None;
    }
    let mut start = at + 1;
    while bytes.get(start).is_some_and(|b| *b == b' ' || *b == b'\t') {
        start += 1;
    }
    let (start, end) = match bytes.get(start) {
        Some(&quote @ (b'"' | b'\'')) => (start + 1, closing_quote(bytes, start + 1, quote)),
        Some(b'\\') if matches!(bytes.get(start + 1), Some(b'"' | b'\'')) => {
            let quote = [b'\\', bytes[start + 1]];
            let end = bytes[start + 2..]
                .windows(2)
                .position(|pair| pair == quote)
                .map_or(bytes.len(), |offset| start + 2 + offset);
            (start + 2, end)
        }
        _ if with_normalized(key, is_line_valued) => (
            start,
            start
                + bytes[start..]
                    .iter()
                    .take_while(|b| !matches!(b, b'\n' | b'\r'))
                    .count(),
        ),
        _ => (
            start,
            start
                + bytes[start..]
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace() && !is_value_end(**b))
                    .count(),
        ),
    };
    if text[start..].starts_with(super::REDACTED) {
        return None;
    }
    // `Authorization: Bearer …` keeps its scheme.
    let value = &bytes[start..end];
    let scheme = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    let start = if scheme > 0 && scheme <= 20 && value.get(scheme) == Some(&b' ') {
        start + scheme + 1
    } else {
        start
    };
    Some(start..end)
}

/// Where a quoted value ends: at the next unescaped `quote`, or the end of the text.
fn closing_quote(bytes: &[u8], from: usize, quote: u8) -> usize {
    let mut index = from;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            byte if byte == quote => return index,
            _ => index += 1,
        }
    }
    bytes.len()
}

/// Bytes that end an unquoted value (`&` in query strings, `,` `;` in lists, brackets).
fn is_value_end(byte: u8) -> bool {
    matches!(
        byte,
        b'&' | b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}' | b'>' | b'<' | b'`'
    )
}

/// The body of a PEM private key block starting at `start` (to the end of the text if cut).
fn private_key(text: &str, start: usize) -> Option<Range<usize>> {
    let header_end = start + 11 + text[start + 11..].find("-----")? + 5;
    if !text[start..header_end].contains("PRIVATE KEY") {
        return None;
    }
    let end = text[header_end..]
        .find("-----END")
        .map_or(text.len(), |offset| header_end + offset);
    Some(header_end..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::keys::{Compiled, DEFAULT_KEY_RULES, KeyRule};

    fn redacted(text: &str) -> String {
        let rules: Vec<Compiled> = DEFAULT_KEY_RULES.iter().map(KeyRule::normalized).collect();
        let keys = KeyRules {
            rules: &rules,
            extra: &[],
        };
        let mut spans = Vec::new();
        secret_spans(text, &keys, &[], &mut spans);
        let mut out = String::new();
        let mut copied = 0;
        for span in spans {
            out.push_str(&text[copied..span.start]);
            out.push('#');
            copied = span.end;
        }
        out + &text[copied..]
    }

    const JWT: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP";

    #[test]
    fn tokens_are_found_next_to_punctuation_and_inside_urls() {
        assert_eq!(redacted(&format!("token {JWT}.")), "token #.");
        assert_eq!(redacted(&format!("here: {JWT}!")), "here: #!");
        assert_eq!(
            redacted(&format!("/cb?state=1&x={JWT}&y=2")),
            "/cb?state=1&x=#&y=2"
        );
        assert_eq!(
            redacted("GET https://api.example.com/v1/sk_live_51Habcdefgh/charges"),
            "GET https://api.example.com/v1/#/charges"
        );
        assert_eq!(
            redacted("the key is AKIAIOSFODNN7EXAMPLE."),
            "the key is #."
        );
        assert_eq!(
            redacted("gh ghp_abcdefghij1234 and github_pat_11ABCDEFG_xyz"),
            "gh # and #"
        );
        assert_eq!(redacted("slack xoxb-123-456-abcdef"), "slack #");
        assert_eq!(redacted("g AIzaSyA1234567890abcdefghijklmnopqrstu"), "g #");
        assert_eq!(
            redacted("uses sk-learn and desk-lamp"),
            "uses sk-learn and desk-lamp"
        );
    }

    #[test]
    fn values_after_sensitive_keys_are_found() {
        assert_eq!(
            redacted("/login?user=bob&password=hunter2&next=/"),
            "/login?user=bob&password=#&next=/"
        );
        assert_eq!(redacted("?code=abc123&sig=xyz"), "?code=#&sig=#");
        assert_eq!(
            redacted(r#"{"api_key": "k-live-123"}"#),
            r##"{"api_key": "#"}"##
        );
        assert_eq!(
            redacted("password: hunter2, user: bob"),
            "password: #, user: bob"
        );
        assert_eq!(
            redacted("Authorization: Digest username=\"a\", response=\"b\"\nnext"),
            "Authorization: Digest #\nnext"
        );
        assert_eq!(redacted("Authorization: tok3n"), "Authorization: #");
        assert_eq!(redacted("Cookie: sid=1; theme=dark"), "Cookie: #");
        assert_eq!(
            redacted("code: see below; time 12:30"),
            "code: see below; time 12:30"
        );
        assert_eq!(redacted("password=[REDACTED]"), "password=[REDACTED]");
        assert_eq!(
            redacted(r#"{\"password\":\"hunter2\",\"a\":1}"#),
            r##"{\"password\":\"#\",\"a\":1}"##
        );
    }

    #[test]
    fn url_passwords_and_private_keys_are_found() {
        assert_eq!(
            redacted("postgres://admin:hunter2@db/prod"),
            "postgres://admin:#@db/prod"
        );
        assert_eq!(
            redacted("https://git@example.com/x"),
            "https://git@example.com/x"
        );
        assert_eq!(
            redacted("k -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- ok"),
            "k -----BEGIN RSA PRIVATE KEY-----#-----END RSA PRIVATE KEY----- ok"
        );
        assert_eq!(
            redacted("-----BEGIN PRIVATE KEY-----\nMIIEow"),
            "-----BEGIN PRIVATE KEY-----#"
        );
        assert_eq!(
            redacted("-----BEGIN CERTIFICATE-----\nMIIB"),
            "-----BEGIN CERTIFICATE-----\nMIIB"
        );
    }
}
