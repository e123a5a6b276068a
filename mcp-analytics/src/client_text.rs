//! [`ClientText`]: a string a client chose (an unknown tool name, `clientInfo` name and version,
//! a JSON-RPC id, a session header, a protocol version) made safe to store, aggregate, export and
//! print: no control characters and at most [`MAX_CLIENT_TEXT_CHARS`] characters.

use std::{borrow::Cow, fmt};

/// The most characters kept of a client-chosen string; a longer one keeps its first
/// `MAX_CLIENT_TEXT_CHARS - 1` characters followed by `…`.
pub const MAX_CLIENT_TEXT_CHARS: usize = 256;

/// What marks a string that was cut.
const ELLIPSIS: char = '…';

/// A client-chosen string without control characters (C0 such as ESC, CR, LF and TAB, DEL, C1
/// such as CSI), line and paragraph separators and bidirectional-override characters, capped at
/// [`MAX_CLIENT_TEXT_CHARS`] characters. A clean string is kept without copying.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientText<'a>(Cow<'a, str>);

impl<'a> ClientText<'a> {
    /// Cleans `text`, borrowing it when there is nothing to change.
    pub fn new(text: &'a str) -> Self {
        if is_clean(text) {
            ClientText(Cow::Borrowed(text))
        } else {
            ClientText(Cow::Owned(clean(text)))
        }
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cleaned text, owned.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl ClientText<'static> {
    /// Cleans `text`, reusing its allocation when there is nothing to change.
    pub fn from_string(text: String) -> Self {
        if is_clean(&text) {
            ClientText(Cow::Owned(text))
        } else {
            ClientText(Cow::Owned(clean(&text)))
        }
    }
}

impl fmt::Display for ClientText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ClientText<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is removed: control characters, line and paragraph separators, and the
/// bidirectional marks and overrides that reorder what a terminal or page shows.
fn is_removed(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn is_clean(text: &str) -> bool {
    if text.len() <= MAX_CLIENT_TEXT_CHARS && text.bytes().all(|byte| (0x20..0x7F).contains(&byte))
    {
        return true; // Printable ASCII, the usual case: checked byte by byte.
    }
    let fits = text.len() <= MAX_CLIENT_TEXT_CHARS || text.chars().count() <= MAX_CLIENT_TEXT_CHARS;
    fits && !text.chars().any(is_removed)
}

fn clean(text: &str) -> String {
    let mut kept = text.chars().filter(|c| !is_removed(*c));
    let mut out = String::with_capacity(text.len().min(4 * MAX_CLIENT_TEXT_CHARS));
    for _ in 0..MAX_CLIENT_TEXT_CHARS - 1 {
        match kept.next() {
            Some(c) => out.push(c),
            None => return out,
        }
    }
    match (kept.next(), kept.next()) {
        (Some(last), None) => out.push(last),
        (Some(_), Some(_)) => out.push(ELLIPSIS),
        (None, _) => {}
    }
    out
}

/// Cleans an owned string in place of the original.
pub(crate) fn client_string(text: String) -> String {
    ClientText::from_string(text).into_string()
}

/// Cleans every string of `event` a client or a remote server chose (the collector's defence
/// for events it did not record itself): tool, server, client and protocol names and versions,
/// session, request and user ids, and the error type.
#[cfg(feature = "dashboard")]
pub(crate) fn clean_event(event: &mut crate::ToolCallEvent) {
    for text in [
        &mut event.tool,
        &mut event.server_name,
        &mut event.server_version,
    ] {
        *text = client_string(std::mem::take(text));
    }
    for text in [
        &mut event.user_id,
        &mut event.session_id,
        &mut event.client_name,
        &mut event.client_version,
        &mut event.protocol_version,
        &mut event.request_id,
        &mut event.error_type,
    ] {
        *text = text.take().map(client_string);
    }
}

/// Makes every client-chosen string of a received request [`ClientText`].
#[cfg(feature = "dashboard")]
pub(crate) fn clean_request(request: &mut crate::RequestEvent) {
    for text in [&mut request.server_name, &mut request.server_version] {
        *text = client_string(std::mem::take(text));
    }
    for text in [
        &mut request.target,
        &mut request.user_id,
        &mut request.session_id,
        &mut request.client_name,
        &mut request.client_version,
        &mut request.protocol_version,
        &mut request.request_id,
        &mut request.error_type,
    ] {
        *text = text.take().map(client_string);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_comes_out_capped_printable_and_stable(
            text in "(\\PC|\\p{Cc}|[\u{202a}-\u{202e}\u{2066}-\u{2069}\u{2028}\u{9b}])*",
            repeat in 1usize..40,
        ) {
            let text = text.repeat(repeat);
            let cleaned = ClientText::new(&text);
            prop_assert!(cleaned.as_str().chars().count() <= MAX_CLIENT_TEXT_CHARS);
            prop_assert!(!cleaned.as_str().chars().any(is_removed));
            prop_assert_eq!(ClientText::new(cleaned.as_str()), cleaned.clone());
            prop_assert_eq!(ClientText::from_string(text.clone()).into_string(), cleaned.as_str());
            let kept: String = text.chars().filter(|c| !is_removed(*c)).collect();
            if kept.chars().count() <= MAX_CLIENT_TEXT_CHARS {
                prop_assert_eq!(cleaned.as_str(), kept.as_str(), "nothing else changes");
            } else {
                let prefix: String = kept.chars().take(MAX_CLIENT_TEXT_CHARS - 1).collect();
                prop_assert_eq!(cleaned.as_str(), format!("{prefix}…"));
            }
        }
    }

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        for text in [
            "search",
            "",
            "d-0123456789abcdef",
            "résumé-Ω-検索",
            &"x".repeat(256),
        ] {
            let cleaned = ClientText::new(text);
            assert_eq!(cleaned.as_str(), text);
            assert!(matches!(cleaned.0, Cow::Borrowed(_)), "{text:?} was copied");
        }
    }

    #[test]
    fn terminal_escapes_and_control_characters_are_removed() {
        let hostile =
            "\u{1b}[31mred\u{1b}]0;title\u{7}\r\n\tname\u{7f}\u{9b}2J\u{202e}txt.exe\u{2028}";
        assert_eq!(
            ClientText::new(hostile).as_str(),
            "[31mred]0;titlename2Jtxt.exe"
        );
    }

    #[test]
    fn long_text_is_cut_to_the_cap_with_an_ellipsis() {
        let long = "é".repeat(4 * 1024 * 1024);
        let cleaned = ClientText::new(&long);
        assert_eq!(cleaned.as_str().chars().count(), MAX_CLIENT_TEXT_CHARS);
        assert!(cleaned.as_str().ends_with('…'));
        let exact = "a".repeat(MAX_CLIENT_TEXT_CHARS + 3);
        let with_escapes = format!("\u{1b}\u{1b}\u{1b}{exact}");
        assert_eq!(
            ClientText::new(&with_escapes).as_str().chars().count(),
            MAX_CLIENT_TEXT_CHARS
        );
        let fits = format!("\u{1b}{}", "a".repeat(MAX_CLIENT_TEXT_CHARS));
        assert_eq!(
            ClientText::new(&fits).as_str(),
            "a".repeat(MAX_CLIENT_TEXT_CHARS),
            "only what is kept counts"
        );
    }
}
