//! Names the attributes accept: [`keys!`] declares an enum of words with their spellings, and
//! [`Keys`] turns a written key into one (unknown keys get a "did you mean", repeats are
//! reported at their second occurrence). The only did-you-mean in the crate lives here.

use std::fmt::Display;

use crate::ctxt::Ctxt;

/// Declares an enum of accepted words (`Variant = "spelling"`), implementing [`Word`].
macro_rules! keys {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_doc:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        $vis enum $name {
            $( $(#[$variant_doc])* $variant, )*
        }

        impl $crate::keys::Word for $name {
            const NAMES: &'static [&'static str] = &[$($text),*];

            fn from_name(name: &str) -> Option<Self> {
                [$(($text, Self::$variant)),*]
                    .into_iter()
                    .find_map(|(text, word)| (text == name).then_some(word))
            }
        }
    };
}
pub(crate) use keys;

/// An enum of words an attribute accepts, declared with [`keys!`].
pub(crate) trait Word: Copy + PartialEq + Sized {
    /// Every accepted spelling, in documentation order.
    const NAMES: &'static [&'static str];
    /// The word spelled `name`, if it is one.
    fn from_name(name: &str) -> Option<Self>;
}

/// Reads the keys of one `( ... )` or `{ ... }`: accepted once each.
pub(crate) struct Keys<K> {
    /// What the keys belong to, for messages (`mcp_server`, `checkout`, ...).
    owner: &'static str,
    seen: Vec<K>,
}

impl<K: Word> Keys<K> {
    /// A reader for the keys of `owner`.
    pub(crate) fn new(owner: &'static str) -> Self {
        Self {
            owner,
            seen: Vec::new(),
        }
    }

    /// The key `ident` names when it is accepted and not a repeat; otherwise records why not.
    pub(crate) fn read(&mut self, ident: &syn::Ident, cx: &mut Ctxt) -> Option<K> {
        let name = ident.to_string();
        let owner = self.owner;
        let Some(key) = K::from_name(&name) else {
            cx.at(
                ident,
                format!(
                    "unknown `{owner}` option `{name}`; {}expected {}",
                    did_you_mean::<K>(&name, |close| format!("`{close}`")),
                    one_of(K::NAMES, |name| format!("`{name}`"))
                ),
            );
            return None;
        };
        if self.seen.contains(&key) {
            cx.at(
                ident,
                format!("duplicate `{owner}` option `{name}`: it is already set"),
            );
            return None;
        }
        self.seen.push(key);
        Some(key)
    }

    /// Whether `key` was read (even if its value was then rejected).
    pub(crate) fn saw(&self, key: K) -> bool {
        self.seen.contains(&key)
    }
}

/// "did you mean X? " for the accepted name closest to `word`, or nothing.
pub(crate) fn did_you_mean<K: Word>(word: &str, show: impl Fn(&str) -> String) -> String {
    did_you_mean_among(word, K::NAMES, show)
}

/// "did you mean X? " for the candidate closest to `word` (names known only from the input:
/// prompts, arguments, URI template variables), or nothing.
pub(crate) fn did_you_mean_among(
    word: &str,
    candidates: &[&str],
    show: impl Fn(&str) -> String,
) -> String {
    match closest(word, candidates) {
        Some(close) => format!("did you mean {}? ", show(close)),
        None => String::new(),
    }
}

/// Formats accepted words as "`a`, `b` or `c`", each shown by `show`.
pub(crate) fn one_of<T: Display>(words: &[&str], show: impl Fn(&str) -> T) -> String {
    let shown: Vec<String> = words.iter().map(|word| show(word).to_string()).collect();
    match shown.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Lists names as "`a`, `b`, `c`", each shown by `show`.
pub(crate) fn listed(words: &[&str], show: impl Fn(&str) -> String) -> String {
    let shown: Vec<String> = words.iter().map(|word| show(word)).collect();
    shown.join(", ")
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= (candidate.len().max(word.len()) / 3).max(1)
                || (word.len() >= 4 && candidate.starts_with(word))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance where swapping two neighbouring characters counts as one edit (typos like
/// `nmae` are one step from `name`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use quote::format_ident;

    use super::*;

    keys! {
        enum Test {
            Name = "name",
            Description = "description",
        }
    }

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["name", "description", "track_results", "redact"];
        assert_eq!(closest("trak_results", &keys), Some("track_results"));
        assert_eq!(closest("descripton", &keys), Some("description"));
        assert_eq!(closest("nmae", &keys), Some("name"));
        assert_eq!(closest("completely_else", &keys), None);
        assert_eq!(
            closest("read_only", &["title", "read_only_hint"]),
            Some("read_only_hint")
        );
    }

    #[test]
    fn lists_words() {
        let tick = |word: &str| format!("`{word}`");
        assert_eq!(one_of(&["a"], tick), "`a`");
        assert_eq!(one_of(&["a", "b", "c"], tick), "`a`, `b` or `c`");
    }

    #[test]
    fn keys_reject_unknown_and_duplicates() {
        let mut keys = Keys::<Test>::new("tool");
        let mut cx = Ctxt::new();
        let read: Vec<_> = ["name", "nmae", "name", "description"]
            .iter()
            .filter_map(|key| keys.read(&format_ident!("{key}"), &mut cx))
            .collect();
        assert_eq!(read, [Test::Name, Test::Description]);
        let messages = cx.messages();
        assert!(messages[0].contains("did you mean `name`?"), "{messages:?}");
        assert!(
            messages[1].contains("duplicate `tool` option `name`"),
            "{messages:?}"
        );
    }
}
