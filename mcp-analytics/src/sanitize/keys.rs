//! Which keys name secrets: [`KeyRule`]s, either a substring of the key's normalised form
//! (`token` catches `access_token` and `X-Auth-Token`) or one whole word of it (`pin` catches
//! `pin`, `user_pin` and `PINCode` but not `pinned`, `shipping` or `spinner`).

use std::borrow::Cow;

/// How one sensitive name is matched against a key (in parameters, results, `key=value` text and
/// URL query strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// The key, lowercased and without `_`, `-`, `.` or spaces, contains this name: `apiKey`
    /// matches `api_key`, `X-API-KEY` and `stripe_api_key_live`.
    Contains(Cow<'static, str>),
    /// One word of the key is this name, ignoring case; words are split at `_`, `-`, `.`, spaces
    /// and camelCase humps. For names that are too short to match as substrings (`pin`, `otp`).
    Word(Cow<'static, str>),
}

impl KeyRule {
    /// A [`KeyRule::Contains`] rule.
    pub const fn contains(name: &'static str) -> Self {
        KeyRule::Contains(Cow::Borrowed(name))
    }

    /// A [`KeyRule::Word`] rule.
    pub const fn word(name: &'static str) -> Self {
        KeyRule::Word(Cow::Borrowed(name))
    }

    /// The rule in the form [`KeyRule::matches`] compares with (normalised, lowercase), with
    /// the letters its name needs.
    pub(super) fn normalized(&self) -> Compiled {
        let rule = match self {
            KeyRule::Contains(name) => KeyRule::Contains(Cow::Owned(normalize_key(name))),
            KeyRule::Word(name) => KeyRule::Word(Cow::Owned(name.to_ascii_lowercase())),
        };
        let name = match &rule {
            KeyRule::Contains(name) | KeyRule::Word(name) => name,
        };
        Compiled {
            mask: letters(name.as_bytes()),
            rule,
        }
    }

    /// Whether `key` (with `normalized` its normalised form) is sensitive under this rule.
    fn matches(&self, key: &str, normalized: &[u8]) -> bool {
        match self {
            KeyRule::Contains(name) => contains_bytes(normalized, name.as_bytes()),
            KeyRule::Word(name) => words(key).any(|word| word.eq_ignore_ascii_case(name)),
        }
    }
}

/// The default key rules. Substrings for names that are unambiguous inside longer keys, whole
/// words for short names (`pin`, `otp`, `pwd`, `dsn`, `jwt`) that would otherwise match
/// `pinned`, `option`, `shipping`, `dsnap` or similar ordinary keys.
pub const DEFAULT_KEY_RULES: &[KeyRule] = &[
    KeyRule::contains("password"),
    KeyRule::contains("passwd"),
    KeyRule::contains("passphrase"),
    KeyRule::contains("apiKey"),
    KeyRule::contains("accessKey"),
    KeyRule::contains("creditCard"),
    KeyRule::contains("cardNumber"),
    KeyRule::contains("cvv"),
    KeyRule::contains("cvc"),
    KeyRule::contains("ssn"),
    KeyRule::contains("token"),
    KeyRule::contains("secret"),
    KeyRule::contains("private"),
    KeyRule::contains("auth"),
    KeyRule::contains("cookie"),
    KeyRule::contains("credential"),
    KeyRule::contains("connectionString"),
    KeyRule::contains("databaseUrl"),
    KeyRule::contains("clientAssertion"),
    KeyRule::contains("mfaCode"),
    KeyRule::word("pwd"),
    KeyRule::word("pin"),
    KeyRule::word("otp"),
    KeyRule::word("totp"),
    KeyRule::word("dsn"),
    KeyRule::word("jwt"),
];

/// Extra names for URL query parameters only (`?code=…&sig=…`), where these short words are
/// credentials far more often than in JSON keys.
pub(super) const QUERY_KEY_RULES: &[KeyRule] = &[
    KeyRule::word("key"),
    KeyRule::word("code"),
    KeyRule::word("sig"),
    KeyRule::word("signature"),
    KeyRule::word("pass"),
    KeyRule::word("session"),
];

/// Keys whose value runs to the end of the line in free text (`Authorization: Digest a=1, b=2`,
/// `Cookie: a=1; b=2`), normalised.
pub(super) fn is_line_valued(normalized: &[u8]) -> bool {
    contains_bytes(normalized, b"authorization") || contains_bytes(normalized, b"cookie")
}

/// A normalised rule and the set of letters its name needs: a key lacking any of them cannot
/// match, which rules out most rules for most keys with one AND.
#[derive(Clone, Debug)]
pub(super) struct Compiled {
    rule: KeyRule,
    mask: u64,
}

/// The set of (ASCII-lowercased) bytes in `bytes`, hashed into 64 bits.
fn letters(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0, |mask, byte| mask | 1 << (byte.to_ascii_lowercase() % 64))
}

/// A set of normalised rules: the sanitizer's own, and per call the tool's `redact` list.
pub(super) struct KeyRules<'a> {
    pub(super) rules: &'a [Compiled],
    pub(super) extra: &'a [Compiled],
}

impl KeyRules<'_> {
    /// Whether `key` names a secret; `query` adds [`QUERY_KEY_RULES`] (a URL query parameter).
    pub(super) fn matches(&self, key: &str, query: bool) -> bool {
        with_normalized(key, |normalized| {
            let present = letters(normalized);
            self.rules.iter().chain(self.extra).any(|compiled| {
                compiled.mask & present == compiled.mask && compiled.rule.matches(key, normalized)
            }) || (query
                && QUERY_KEY_RULES
                    .iter()
                    .any(|rule| rule.matches(key, normalized)))
        })
    }
}

/// Calls `f` with `key` normalised, without allocating for ordinary keys.
pub(super) fn with_normalized<T>(key: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    let mut buffer = [0u8; 64];
    if key.len() <= buffer.len() {
        let mut length = 0;
        for byte in key.bytes().filter(|byte| !is_key_separator(*byte)) {
            buffer[length] = byte.to_ascii_lowercase();
            length += 1;
        }
        f(&buffer[..length])
    } else {
        f(normalize_key(key).as_bytes())
    }
}

/// ASCII-lowercase without `_`, `-`, `.` or spaces: `API-KEY`, `api_key` and `apiKey` all
/// become `apikey`.
pub(super) fn normalize_key(key: &str) -> String {
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

/// The words of a key: split at separators and camelCase humps (`userPINCode` → `user`, `PIN`,
/// `Code`).
fn words(key: &str) -> impl Iterator<Item = &str> {
    let bytes = key.as_bytes();
    let mut start = 0;
    let mut index = 0;
    std::iter::from_fn(move || {
        while index < bytes.len() {
            let byte = bytes[index];
            if !byte.is_ascii_alphanumeric() {
                let word = &key[start..index];
                index += 1;
                start = index;
                if !word.is_empty() {
                    return Some(word);
                }
                continue;
            }
            let hump = index > start
                && byte.is_ascii_uppercase()
                && (bytes[index - 1].is_ascii_lowercase()
                    || bytes[index - 1].is_ascii_digit()
                    || (bytes[index - 1].is_ascii_uppercase()
                        && bytes.get(index + 1).is_some_and(u8::is_ascii_lowercase)));
            if hump {
                let word = &key[start..index];
                start = index;
                index += 1;
                return Some(word);
            }
            index += 1;
        }
        if start < bytes.len() {
            let word = &key[start..];
            start = bytes.len();
            return Some(word);
        }
        None
    })
}

/// Substring search tuned for the short needles and texts redaction deals with (the standard
/// two-way search spends more on setup than on searching here).
pub(super) fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && haystack[..=haystack.len() - needle.len()]
            .iter()
            .enumerate()
            .any(|(index, &byte)| byte == first && haystack[index + 1..].starts_with(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensitive(key: &str) -> bool {
        let rules: Vec<Compiled> = DEFAULT_KEY_RULES.iter().map(KeyRule::normalized).collect();
        KeyRules {
            rules: &rules,
            extra: &[],
        }
        .matches(key, false)
    }

    #[test]
    fn words_split_at_separators_and_camel_humps() {
        let split = |key| words(key).collect::<Vec<_>>();
        assert_eq!(split("userPINCode"), ["user", "PIN", "Code"]);
        assert_eq!(split("mfa_code"), ["mfa", "code"]);
        assert_eq!(split("x--pin..2"), ["x", "pin", "2"]);
        assert_eq!(split("PIN"), ["PIN"]);
        assert_eq!(split("pinned"), ["pinned"]);
        assert_eq!(split("otp2fa"), ["otp2fa"]);
    }

    #[test]
    fn the_issue_key_names_are_sensitive() {
        for key in [
            "passwd",
            "pwd",
            "db_pwd",
            "passphrase",
            "pin",
            "userPin",
            "PIN",
            "otp",
            "otp_code",
            "mfa_code",
            "mfaCode",
            "cvv",
            "cvc",
            "card_number",
            "cardNumber",
            "cookie",
            "set-cookie",
            "Set-Cookie",
            "credentials",
            "connection_string",
            "connectionString",
            "database_url",
            "DATABASE_URL",
            "dsn",
            "sentry_dsn",
            "client_assertion",
            "jwt",
            "id_jwt",
            "Authorization",
        ] {
            assert!(sensitive(key), "{key} should be sensitive");
        }
    }

    #[test]
    fn word_rules_do_not_match_inside_ordinary_words() {
        for key in [
            "pinned", "option", "options", "shipping", "spinner", "topping", "dsnap", "jwtish",
            "city", "units", "days", "query", "opinion", "pwdx",
        ] {
            assert!(!sensitive(key), "{key} should not be sensitive");
        }
    }
}
