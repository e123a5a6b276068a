//! Card numbers in free text: Luhn-valid 13–19 digits, written whole or in groups separated by
//! single spaces or dashes (or dots between groups of four), found also next to other digit
//! groups (`order 12345 4242424242424242`, `4111 1111 1111 1111 12/26`).

use std::ops::Range;

/// Whether `text` has enough digits to hold a card number (the cheap pre-filter).
pub(super) fn may_hold_card(text: &str) -> bool {
    text.bytes().filter(u8::is_ascii_digit).nth(12).is_some()
}

/// Adds the byte ranges of card numbers in `text` to `spans`.
pub(super) fn card_spans(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let mut groups: Vec<Group> = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        // One run: digit groups joined by single separators.
        groups.clear();
        let mut separator = None;
        loop {
            let start = index;
            while index < bytes.len() && bytes[index].is_ascii_digit() {
                index += 1;
            }
            groups.push(Group {
                range: start..index,
                after: separator,
            });
            match bytes.get(index) {
                Some(&byte @ (b' ' | b'-' | b'.'))
                    if bytes.get(index + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    separator = Some(byte);
                    index += 1;
                }
                _ => break,
            }
        }
        let first = groups[0].range.start;
        let glued_before = first > 0 && bytes[first - 1].is_ascii_alphanumeric();
        let glued_after = bytes.get(index).is_some_and(u8::is_ascii_alphanumeric);
        let usable = usize::from(glued_before)..groups.len() - usize::from(glued_after);
        cards_in_run(bytes, &groups, usable, spans);
    }
}

/// A run of digits and the separator before it (`None` for a run's first group).
struct Group {
    range: Range<usize>,
    after: Option<u8>,
}

/// Picks non-overlapping windows of whole groups that are card numbers, 16-digit ones first.
fn cards_in_run(
    bytes: &[u8],
    groups: &[Group],
    usable: Range<usize>,
    spans: &mut Vec<Range<usize>>,
) {
    // Dots separate only groups of four (`4242.4242.…`); no card spans any other dot
    // (`1733212345.123456` is one number).
    let dotted = |index: usize| {
        groups.get(index).is_some_and(|group| {
            group.after == Some(b'.')
                && (group.range.len() != 4 || groups[index - 1].range.len() != 4)
        })
    };
    let mut windows: Vec<(u8, usize, usize)> = Vec::new();
    for first in usable.clone() {
        let mut digits = 0;
        for last in first..usable.end {
            let group = &groups[last];
            digits += group.range.len();
            if digits > 19 || (last > first && dotted(last)) {
                break;
            }
            if digits >= 13
                && luhn_valid(
                    groups[first..=last].iter().flat_map(|group| {
                        bytes[group.range.clone()].iter().map(|digit| digit - b'0')
                    }),
                )
            {
                let priority = match digits {
                    16 => 0,
                    15 => 1,
                    _ => 2,
                };
                windows.push((priority, first, last));
            }
        }
    }
    windows.sort_unstable();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (_, first, last) in windows {
        if taken.iter().all(|&(a, b)| last < a || first > b) {
            taken.push((first, last));
            spans.push(groups[first].range.start..groups[last].range.end);
        }
    }
}

/// The Luhn checksum of `digits` (most significant first) is valid.
pub(super) fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A whole string of 13–19 digits (other characters ignored) that passes the Luhn check.
pub(super) fn looks_like_card(candidate: &str) -> bool {
    let digits = || {
        candidate
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
    };
    (13..=19).contains(&digits().count()) && luhn_valid(digits())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        let mut spans = Vec::new();
        card_spans(text, &mut spans);
        spans.sort_by_key(|span| span.start);
        let mut out = String::new();
        let mut copied = 0;
        for span in spans {
            out.push_str(&text[copied..span.start]);
            out.push('#');
            copied = span.end;
        }
        out + &text[copied..]
    }

    #[test]
    fn cards_next_to_other_digit_groups_are_found() {
        assert_eq!(redacted("4111 1111 1111 1111 12/26"), "# 12/26");
        assert_eq!(redacted("order 12345 4242424242424242"), "order 12345 #");
        assert_eq!(redacted("4242.4242.4242.4242"), "#");
        assert_eq!(redacted("12 4242 4242 4242 4242 99"), "12 # 99");
        assert_eq!(redacted("4000-0566-5566-5556."), "#.");
    }

    #[test]
    fn ordinary_numbers_stay() {
        for text in [
            "order 1234567890123 shipped",
            "at 1733212345.123456 and 1.0000000000001",
            "id a4242424242424242",
            "4242424242424242x",
            "2026-12-03 10:00",
        ] {
            assert_eq!(redacted(text), text);
        }
    }
}
