//! A configurable redactor of personal data, for logs and for text sent to an external LLM.
//!
//! Each kind is found by a pattern and then validated where the data allows it, so look-alikes
//! stay: a payment card must pass the Luhn check, an IBAN the ISO 7064 mod-97 check, a US SSN
//! the issuing rules, an IP address must parse. Phone numbers have no checksum: they need 9 to
//! 15 digits, written with a leading `+`, separators or parentheses (or 10 to 15 digits in one
//! run), and must not be part of a longer token (`A-1043`, a price, a date or a card that
//! failed Luhn are left alone).

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Iban,
    PaymentCard,
    UsSsn,
    IpAddress,
    Phone,
}

impl PiiKind {
    /// Every kind, in the order overlapping matches are resolved (the first wins).
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Iban,
        PiiKind::PaymentCard,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
        PiiKind::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Iban => "iban",
            PiiKind::PaymentCard => "payment_card",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
            PiiKind::Phone => "phone",
        }
    }

    /// What replaces a redacted value.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::PaymentCard => "[CARD]",
            PiiKind::UsSsn => "[SSN]",
            PiiKind::IpAddress => "[IP]",
            PiiKind::Phone => "[PHONE]",
        }
    }

    /// The kind named `name` (as written by [`PiiKind::as_str`]), for configuration files.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Replaces the configured kinds of personal data by placeholders (`[EMAIL]`, `[CARD]`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiRedactor {
    kinds: Vec<PiiKind>,
}

impl Default for PiiRedactor {
    fn default() -> Self {
        Self::all()
    }
}

fn never() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("the empty class is a valid regex"))
}

fn regex(pattern: &str) -> Regex {
    // Constants checked by the unit tests.
    Regex::new(pattern).unwrap_or_else(|_| never())
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"));
/// Written in upper case, in groups of four or in one run.
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"));
static CARD: LazyLock<Regex> = LazyLock::new(|| regex(r"\b\d(?:[ -]?\d){12,18}\b"));
static SSN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(\d{3})([- ])(\d{2})([- ])(\d{4})\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"));
static IPV6: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){0,5}")
});

/// Luhn check of a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// ISO 13616 IBAN check (country code, check digits, mod 97 = 1).
pub fn iban_valid(candidate: &str) -> bool {
    let s: String = candidate
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(15..=34).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, rest) = s.split_at(4);
    let mut remainder: u32 = 0;
    for c in rest.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

impl PiiRedactor {
    pub fn new(kinds: &[PiiKind]) -> Self {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        Self { kinds }
    }

    pub fn all() -> Self {
        Self::new(&PiiKind::ALL)
    }

    pub fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }

    /// The text with every configured kind replaced by its placeholder, and how many of each
    /// were replaced (kinds with none are left out).
    pub fn redact(&self, text: &str) -> (String, Vec<(PiiKind, usize)>) {
        let mut taken: Vec<(usize, usize, PiiKind)> = Vec::new();
        // Kinds in priority order; a later kind never overlaps an earlier one's match.
        for &kind in &self.kinds {
            for (start, end) in find(kind, text) {
                if taken.iter().all(|(s, e, _)| end <= *s || start >= *e) {
                    taken.push((start, end, kind));
                }
            }
        }
        taken.sort();
        let mut out = String::with_capacity(text.len());
        let mut counts: Vec<(PiiKind, usize)> = Vec::new();
        let mut at = 0;
        for (start, end, kind) in taken {
            out.push_str(&text[at..start]);
            out.push_str(kind.placeholder());
            at = end;
            match counts.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((kind, 1)),
            }
        }
        out.push_str(&text[at..]);
        counts.sort();
        (out, counts)
    }
}

/// The byte ranges of `kind` in `text`, validated.
fn find(kind: PiiKind, text: &str) -> Vec<(usize, usize)> {
    let bounded = |s: usize, e: usize| standalone(text, s, e);
    match kind {
        PiiKind::Email => EMAIL
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect(),
        PiiKind::Iban => IBAN
            .find_iter(text)
            .filter(|m| iban_valid(m.as_str()))
            .map(|m| (m.start(), m.end()))
            .collect(),
        PiiKind::PaymentCard => CARD
            .find_iter(text)
            .filter(|m| {
                let d = digits(m.as_str());
                (13..=19).contains(&d.len()) && luhn(&d) && bounded(m.start(), m.end())
            })
            .map(|m| (m.start(), m.end()))
            .collect(),
        PiiKind::UsSsn => SSN
            .captures_iter(text)
            .filter(|c| {
                let (area, group, serial) = (&c[1], &c[3], &c[5]);
                c[2] == c[4]
                    && area != "000"
                    && area != "666"
                    && !area.starts_with('9')
                    && group != "00"
                    && serial != "0000"
            })
            .filter_map(|c| c.get(0))
            .filter(|m| bounded(m.start(), m.end()))
            .map(|m| (m.start(), m.end()))
            .collect(),
        PiiKind::IpAddress => {
            let mut found: Vec<(usize, usize)> = IPV4
                .find_iter(text)
                .filter(|m| {
                    m.as_str().parse::<std::net::Ipv4Addr>().is_ok() && bounded(m.start(), m.end())
                })
                .map(|m| (m.start(), m.end()))
                .collect();
            found.extend(
                IPV6.find_iter(text)
                    .filter(|m| {
                        let s = m.as_str();
                        (s.contains("::") || s.matches(':').count() == 7)
                            && s.parse::<std::net::Ipv6Addr>().is_ok()
                    })
                    .map(|m| (m.start(), m.end())),
            );
            found
        }
        PiiKind::Phone => PHONE
            .find_iter(text)
            .filter(|m| {
                let s = m.as_str();
                let n = digits(s).len();
                let formatted =
                    s.starts_with('+') || s.contains('(') || s.contains([' ', '-', '.']);
                let enough = if formatted {
                    (9..=15).contains(&n)
                } else {
                    (10..=15).contains(&n)
                };
                // One dot is a decimal number; dotted phone numbers have two or more.
                let decimal = s.matches('.').count() == 1;
                enough && !decimal && !looks_like_date(s) && bounded(m.start(), m.end())
            })
            .map(|m| (m.start(), m.end()))
            .collect(),
    }
}

/// `2024-05-01`, `2024.05.01`, `01-05-2024`: a date, not a phone number.
fn looks_like_date(s: &str) -> bool {
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    groups.len() == 3
        && ((groups[0].len() == 4 && groups[1].len() <= 2 && groups[2].len() <= 2)
            || (groups[0].len() <= 2 && groups[1].len() <= 2 && groups[2].len() == 4))
}

/// The match is a token of its own: not glued to letters, digits or the marks of an
/// identifier, an amount or a decimal (`A-1043`, `$1043`, `10.5`, `#1043`).
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let glued_before = before.is_some_and(|c| {
        c.is_alphanumeric()
            || matches!(c, '-' | '_' | '/' | '#' | '$' | '€' | '£' | '.' | ',' | '+')
    });
    let mut rest = text[end..].chars();
    rest.next();
    let glued_after = after.is_some_and(|c| {
        c.is_alphanumeric()
            || matches!(c, '_' | '/' | '%' | '-')
            || (matches!(c, '.' | ',') && rest.next().is_some_and(|d| d.is_ascii_digit()))
    });
    !glued_before && !glued_after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        PiiRedactor::all().redact(text).0
    }

    #[test]
    fn patterns_compile() {
        for r in [&*EMAIL, &*IBAN, &*CARD, &*SSN, &*IPV4, &*IPV6, &*PHONE] {
            assert_ne!(r.as_str(), never().as_str());
        }
    }

    #[test]
    fn redacts_each_kind() {
        let cases = [
            (
                "mail me at jane.doe+bills@example.co.uk please",
                "mail me at [EMAIL] please",
            ),
            (
                "card 4111 1111 1111 1111 was charged",
                "card [CARD] was charged",
            ),
            ("card 4111-1111-1111-1111.", "card [CARD]."),
            ("my amex 378282246310005", "my amex [CARD]"),
            (
                "IBAN GB82 WEST 1234 5698 7654 32 for the refund",
                "IBAN [IBAN] for the refund",
            ),
            ("iban DE89370400440532013000", "iban [IBAN]"),
            ("SSN 123-45-6789", "SSN [SSN]"),
            (
                "from 192.168.1.20 and 2001:db8::8a2e:370:7334",
                "from [IP] and [IP]",
            ),
            (
                "call +44 20 7946 0958 or (555) 123-4567",
                "call [PHONE] or [PHONE]",
            ),
            ("my number is 555.123.4567", "my number is [PHONE]"),
            ("ring 07946095812 after 5", "ring [PHONE] after 5"),
        ];
        for (text, want) in cases {
            assert_eq!(redacted(text), want, "{text}");
        }
    }

    #[test]
    fn leaves_look_alikes_alone() {
        let keep = [
            "Where is order A-1043?",
            "It cost $1,299.99 on 2024-05-01 at 10:30:45",
            "order #10432345678 arrived",
            "card 4111 1111 1111 1112 (fails Luhn)",
            "firmware 2.1.0 on version 300.1.2.3",
            "transfer 1500 EUR to account 12345678 by 12/05/2024",
            "the meeting is at 10:30, room 4",
            "tracking 1Z999AA10123456784",
            "ratio 3.14159265358979",
        ];
        for text in keep {
            assert_eq!(redacted(text), text);
        }
    }

    #[test]
    fn invalid_numbers_are_not_their_kind() {
        // Never issued (area 000 and 666), a wrong IBAN check digit: whatever else the digits
        // may be taken for, they are not an SSN or an IBAN.
        for (text, not) in [
            ("SSN 000-12-3456", "[SSN]"),
            ("SSN 666-12-3456", "[SSN]"),
            ("IBAN GB82 WEST 1234 5698 7654 33", "[IBAN]"),
            ("card 4111 1111 1111 1112", "[CARD]"),
        ] {
            assert!(!redacted(text).contains(not), "{text}: {}", redacted(text));
        }
    }

    #[test]
    fn counts_and_configured_kinds() {
        let text = "a@b.io, c@d.io, 4111111111111111 and 192.168.0.1";
        let (out, counts) = PiiRedactor::all().redact(text);
        assert_eq!(out, "[EMAIL], [EMAIL], [CARD] and [IP]");
        assert_eq!(
            counts,
            vec![
                (PiiKind::Email, 2),
                (PiiKind::PaymentCard, 1),
                (PiiKind::IpAddress, 1)
            ]
        );
        let only_email = PiiRedactor::new(&[PiiKind::Email]);
        assert_eq!(
            only_email.redact(text).0,
            "[EMAIL], [EMAIL], 4111111111111111 and 192.168.0.1"
        );
        assert_eq!(PiiKind::parse("payment_card"), Some(PiiKind::PaymentCard));
        assert_eq!(PiiKind::parse("card"), None);
    }

    #[test]
    fn checksums() {
        assert!(luhn("79927398713"));
        assert!(!luhn("79927398710"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("GB82WEST12345698765433"));
    }
}
