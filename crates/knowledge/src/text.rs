//! Text helpers shared by the index and the answerer: analysis, stopwords, sentence units.

use std::collections::HashSet;
use std::sync::OnceLock;

/// English function words, support filler and question frames ("how long does it take")
/// that say nothing about what is being asked.
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "don't", "down", "during", "each", "few", "for", "from",
    "further", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "i'm", "if", "in", "into", "is", "it", "it's", "its",
    "itself", "just", "let", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of",
    "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
    "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    "hi", "hello", "hey", "please", "thanks", "thank", "pls", "plz", "im", "ive", "dont", "cant",
    "can't", "want", "need", "know", "tell", "help", "question", "also", "ok", "okay", "yes",
    "there's", "what's", "how's", "s", "t", "d", "ll", "m", "re", "ve", "long", "take", "takes",
    "took", "much", "many", "soon", "often", "possible", "able", "anything", "something", "way",
    "ways", "anyone", "someone", "guys", "u", "ur",
];

pub fn is_stopword(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
        .contains(word)
}

/// Lower-cased words of `text` (letters, digits, apostrophes inside words).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !current.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            current.push('\'');
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One extractable piece of a chunk: a sentence of a paragraph or one list item / table row.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub text: String,
    /// Index of the block (paragraph, list, table) it belongs to.
    pub block: usize,
    pub list_item: bool,
}

/// Splits chunk text (blocks separated by blank lines, list items as `- ` / `1. ` lines) into units.
pub fn units(text: &str) -> Vec<Unit> {
    let mut out = Vec::new();
    for (block, para) in text.split("\n\n").enumerate() {
        for line in para.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            if is_list_line(trimmed) {
                out.push(Unit {
                    text: trimmed.to_string(),
                    block,
                    list_item: true,
                });
            } else {
                for s in sentences(trimmed) {
                    out.push(Unit {
                        text: s,
                        block,
                        list_item: false,
                    });
                }
            }
        }
    }
    out
}

pub fn is_list_line(line: &str) -> bool {
    if line.starts_with("- ") || line.starts_with("* ") {
        return true;
    }
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && digits < 4 && line[digits..].starts_with(". ")
}

/// Splits a paragraph into sentences at `.`, `!` or `?` followed by a space and a capital,
/// digit or quote, without splitting common abbreviations.
pub fn sentences(paragraph: &str) -> Vec<String> {
    const ABBREVIATIONS: &[&str] = &[
        "e.g.", "i.e.", "etc.", "vs.", "approx.", "no.", "mr.", "ms.", "dr.", "st.",
    ];
    let chars: Vec<char> = paragraph.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // No split inside a quotation: `the message "Too many attempts. Try again later." appears`.
    let mut in_quote = false;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '“' | '”') {
            in_quote = match c {
                '“' => true,
                '”' => false,
                _ => !in_quote,
            };
        }
        let terminal = matches!(c, '.' | '!' | '?')
            || (matches!(c, '"' | '”') && i > 0 && matches!(chars[i - 1], '.' | '!' | '?'));
        if !in_quote && terminal && i + 2 < chars.len() && chars[i + 1] == ' ' {
            let next = chars[i + 2];
            let candidate: String = chars[start..=i].iter().collect();
            let last_word = candidate
                .split_whitespace()
                .last()
                .unwrap_or("")
                .to_lowercase();
            let abbreviation = ABBREVIATIONS.contains(&last_word.as_str());
            if !abbreviation
                && (next.is_uppercase()
                    || next.is_ascii_digit()
                    || matches!(next, '"' | '“' | '(' | '*'))
            {
                out.push(candidate.trim().to_string());
                start = i + 2;
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    let rest: String = chars[start..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_contractions_and_lowercase() {
        assert_eq!(
            words("Don't RESET the T2, e.g. now!"),
            vec!["don't", "reset", "the", "t2", "e", "g", "now"]
        );
    }

    #[test]
    fn sentences_split_without_breaking_abbreviations() {
        let s = sentences(
            "Refunds take 5–7 business days. Use a card, e.g. Visa. Then wait! 3 tries max.",
        );
        assert_eq!(
            s,
            vec![
                "Refunds take 5–7 business days.",
                "Use a card, e.g. Visa.",
                "Then wait!",
                "3 tries max."
            ]
        );
        assert_eq!(
            sentences("You see \"Too many attempts. Try again later.\" The lock ends."),
            vec![
                "You see \"Too many attempts. Try again later.\"",
                "The lock ends."
            ]
        );
    }

    #[test]
    fn units_separate_list_items() {
        let u = units("To reset:\n1. Hold the button.\n2. Wait.\n\nDone. Really.");
        let texts: Vec<_> = u
            .iter()
            .map(|u| (u.text.as_str(), u.block, u.list_item))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("To reset:", 0, false),
                ("1. Hold the button.", 0, true),
                ("2. Wait.", 0, true),
                ("Done.", 1, false),
                ("Really.", 1, false)
            ]
        );
    }
}
