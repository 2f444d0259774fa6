//! Grounded extractive answers: every sentence of a reply is copied from a retrieved passage
//! and followed by that passage's citation number, so nothing is stated that is not cited.

use crate::index::{Hit, KnowledgeIndex, QueryTerm};
use crate::text::{Unit, units};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerConfig {
    /// Evidence (0–1) below which no answer is given.
    pub min_evidence: f32,
    pub max_citations: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// Built from cited passages.
    Grounded,
    /// Evidence too weak: says so and offers a person.
    NoAnswer,
    /// The message has no content words (a greeting, "???"): invite a question.
    NoQuestion,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub kind: AnswerKind,
    pub text: String,
    /// Cited hits in citation order (`[1]` is the first).
    pub cited: Vec<Hit>,
    /// Evidence of the best passage, 0–1.
    pub evidence: f32,
    /// Why this kind of answer was given, for the event log.
    pub reason: String,
}

pub const NO_ANSWER_TEXT: &str = "I'm sorry, I couldn't find a reliable answer to that in our help center, and I don't want to guess. \
Would you like me to connect you with a person? Press \"Talk to a person\" and someone from our team will take over.";

pub const NO_QUESTION_TEXT: &str = "Hello! I'm the virtual assistant. Ask me about our products, orders, shipping, billing or your account, and I'll find the answer in our help center.";

const CLOSING: &str = "Did this answer your question?";
const MAX_SENTENCES: usize = 3;
const MAX_LIST_ITEMS: usize = 10;
const MAX_BULLETS: usize = 4;
/// A second source is cited only if it scores at least this fraction of the best one.
const SECOND_SOURCE_RATIO: f32 = 0.6;
/// ... and have at least this fraction of the best one's evidence.
const SECOND_SOURCE_EVIDENCE: f32 = 0.9;

/// IDF-weighted share of the query's content words found in the text.
fn coverage(index: &KnowledgeIndex, terms: &[QueryTerm], text: &str) -> f32 {
    let total: f32 = terms.iter().map(|t| t.idf).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let stems: HashSet<String> = index.stems(text).into_iter().collect();
    terms
        .iter()
        .filter(|t| stems.contains(&t.stem))
        .map(|t| t.idf)
        .sum::<f32>()
        / total
}

/// Evidence that `hit` answers the query: the IDF-weighted share of the query's content words
/// present in its title, headings and text. Unknown words count fully against it.
pub fn evidence(index: &KnowledgeIndex, terms: &[QueryTerm], hit: &Hit) -> f32 {
    let text = format!(
        "{}\n{}\n{}",
        hit.title,
        hit.heading_path.join("\n"),
        hit.text
    );
    coverage(index, terms, &text)
}

/// The list items around `at`: every step of a numbered list; of a bullet list (or table), the
/// items that match the question best, or its first few.
fn list_items(all: &[Unit], scores: &[f32], at: usize) -> Vec<usize> {
    let block = all[at].block;
    let same = |i: usize| all[i].list_item && all[i].block == block;
    let mut start = at;
    while start > 0 && same(start - 1) {
        start -= 1;
    }
    let mut end = at;
    while end + 1 < all.len() && same(end + 1) {
        end += 1;
    }
    let numbered = all[at].text.starts_with(|c: char| c.is_ascii_digit());
    if numbered {
        return (start..=end).take(MAX_LIST_ITEMS).collect();
    }
    // The items that match the question best (rows of a table all share its column words).
    let top = (start..=end).map(|i| scores[i]).fold(0.0f32, f32::max);
    let matching: Vec<usize> = (start..=end)
        .filter(|&i| top > 0.0 && scores[i] >= top - 1e-6)
        .take(MAX_BULLETS)
        .collect();
    if matching.is_empty() {
        (start..=end).take(MAX_BULLETS).collect()
    } else {
        matching
    }
}

/// Picks the units of one passage that answer the query, in passage order.
fn select_units(index: &KnowledgeIndex, terms: &[QueryTerm], hit: &Hit) -> Vec<Unit> {
    let all = units(&hit.text);
    if all.is_empty() {
        return Vec::new();
    }
    let scores: Vec<f32> = all
        .iter()
        .map(|u| coverage(index, terms, &u.text))
        .collect();
    // The best unit (the first of equals); when only the title/headings match, the passage's lead.
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    let mut chosen: Vec<usize> = Vec::new();
    if all[best].list_item {
        let items = list_items(&all, &scores, best);
        // Keep the sentence that introduces the list ("To reset your password:").
        if let Some(&first) = items.first() {
            let run_start = (0..=first)
                .rev()
                .take_while(|&i| all[i].list_item)
                .last()
                .unwrap_or(first);
            if run_start > 0
                && !all[run_start - 1].list_item
                && all[run_start - 1].text.ends_with(':')
            {
                chosen.push(run_start - 1);
            }
        }
        chosen.extend(items);
    } else {
        chosen.push(best);
        // Up to two more sentences that also speak to the query, or the one right after.
        for i in best + 1..all.len() {
            if chosen.len() >= MAX_SENTENCES || all[i].list_item {
                break;
            }
            if scores[i] > 0.0 || (i == best + 1 && all[i].block == all[best].block) {
                chosen.push(i);
            }
        }
        // A sentence that introduces a list ("Before reporting a missing package:") brings it.
        if let Some(&last) = chosen.last()
            && all[last].text.ends_with(':')
            && last + 1 < all.len()
            && all[last + 1].list_item
        {
            chosen.extend(list_items(&all, &scores, last + 1));
        }
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen.into_iter().map(|i| all[i].clone()).collect()
}

fn render(units: &[Unit], n: usize) -> String {
    let mut out = String::new();
    for (i, u) in units.iter().enumerate() {
        if i > 0 {
            out.push(if u.list_item || units[i - 1].list_item {
                '\n'
            } else {
                ' '
            });
        }
        out.push_str(&u.text);
    }
    out.push_str(&format!(" [{n}]"));
    out
}

/// Composes the reply to `terms` from `hits` (best first).
pub fn compose_answer(
    index: &KnowledgeIndex,
    terms: &[QueryTerm],
    hits: &[Hit],
    cfg: AnswerConfig,
) -> Answer {
    if terms.is_empty() {
        return Answer {
            kind: AnswerKind::NoQuestion,
            text: NO_QUESTION_TEXT.to_string(),
            cited: vec![],
            evidence: 0.0,
            reason: "the message has no content words".into(),
        };
    }
    let Some(top) = hits.first() else {
        return Answer {
            kind: AnswerKind::NoAnswer,
            text: NO_ANSWER_TEXT.to_string(),
            cited: vec![],
            evidence: 0.0,
            reason: "no passage matched any word of the question".into(),
        };
    };
    let top_evidence = evidence(index, terms, top);
    if top_evidence < cfg.min_evidence {
        return Answer {
            kind: AnswerKind::NoAnswer,
            text: NO_ANSWER_TEXT.to_string(),
            cited: vec![],
            evidence: top_evidence,
            reason: format!(
                "best passage evidence {top_evidence:.3} is below the threshold {:.3} (\"{}\")",
                cfg.min_evidence, top.title
            ),
        };
    }
    let mut parts = Vec::new();
    let mut cited: Vec<Hit> = Vec::new();
    let mut covered: HashSet<String> = HashSet::new();
    for hit in hits {
        if cited.len() >= cfg.max_citations.max(1) {
            break;
        }
        if !cited.is_empty() {
            // A further source must be about as strong as the first and bring query words the
            // earlier ones lacked; otherwise it only adds noise.
            let strong = hit.score >= top.score * SECOND_SOURCE_RATIO
                && evidence(index, terms, hit)
                    >= cfg.min_evidence.max(top_evidence * SECOND_SOURCE_EVIDENCE);
            if !strong || cited.iter().any(|c| c.document_id == hit.document_id) {
                continue;
            }
            let new_terms = index
                .matched_terms(hit, terms)
                .into_iter()
                .filter(|t| !covered.contains(t))
                .count();
            if new_terms == 0 {
                continue;
            }
        }
        let chosen = select_units(index, terms, hit);
        if chosen.is_empty() {
            continue;
        }
        covered.extend(index.matched_terms(hit, terms));
        cited.push(hit.clone());
        parts.push(render(&chosen, cited.len()));
    }
    if cited.is_empty() {
        return Answer {
            kind: AnswerKind::NoAnswer,
            text: NO_ANSWER_TEXT.to_string(),
            cited,
            evidence: top_evidence,
            reason: "the best passages had no extractable text".into(),
        };
    }
    let mut text = parts.join("\n\n");
    text.push_str("\n\n");
    text.push_str(CLOSING);
    Answer {
        kind: AnswerKind::Grounded,
        text,
        cited,
        evidence: top_evidence,
        reason: format!(
            "best passage evidence {top_evidence:.3} >= threshold {:.3}",
            cfg.min_evidence
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_core::WorkspaceId;

    fn setup() -> (KnowledgeIndex, WorkspaceId) {
        let index = KnowledgeIndex::in_memory().expect("index");
        let ws = WorkspaceId::new();
        let mk = |title: &str, heading: &str, body: &str| {
            crate::index::tests::test_doc(ws, title, heading, body)
        };
        index
            .apply(
                &[
                    mk("Returns", "Return window", "You can return most items within 30 days of delivery. Items must be unused. Our warehouse is in Ohio."),
                    mk("Reset your password", "Steps", "To reset your password:\n1. Open the sign-in page.\n2. Choose Forgot password.\n3. Follow the emailed link."),
                    mk("Shipping", "Speeds", "Standard shipping takes 3 to 5 business days. Express shipping takes 1 to 2 business days."),
                    mk("Missing packages", "Delivered but not here", "UPS sometimes marks a package as delivered early. Before reporting a missing package:\n\n- Check around your door.\n- Ask your neighbours.\n- Wait until the end of the day."),
                    mk("Reset buttons", "Devices", "- Device: Hub; Reset: hold 15 seconds\n- Device: Plug; Reset: hold 10 seconds\n- Device: Bulb; Reset: switch off and on 5 times"),
                ],
                &[],
            )
            .expect("apply");
        (index, ws)
    }

    const CFG: AnswerConfig = AnswerConfig {
        min_evidence: 0.5,
        max_citations: 3,
    };

    #[test]
    fn answers_quote_cited_sentences_only() {
        let (index, ws) = setup();
        let terms = index.query_terms("How many days do I have to return an item?");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let a = compose_answer(&index, &terms, &hits, CFG);
        assert_eq!(a.kind, AnswerKind::Grounded, "{a:?}");
        assert_eq!(a.cited[0].title, "Returns");
        assert!(
            a.text
                .starts_with("You can return most items within 30 days of delivery."),
            "{}",
            a.text
        );
        assert!(a.text.contains("[1]"));
        // Every line but the closing question is copied from a cited passage.
        for line in a.text.lines().filter(|l| !l.is_empty() && *l != CLOSING) {
            let line = line
                .trim_end_matches(|c: char| c == ']' || c.is_ascii_digit() || c == '[' || c == ' ');
            for piece in line.split(". ") {
                let piece = piece.trim_end_matches('.');
                assert!(
                    a.cited.iter().any(|h| h.text.contains(piece)),
                    "{piece:?} not in a cited passage"
                );
            }
        }
    }

    #[test]
    fn procedures_keep_their_steps() {
        let (index, ws) = setup();
        let terms = index.query_terms("i forgot my password, how to reset it");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let a = compose_answer(&index, &terms, &hits, CFG);
        assert_eq!(a.kind, AnswerKind::Grounded);
        assert!(
            a.text.starts_with("To reset your password:\n1. Open the sign-in page.\n2. Choose Forgot password.\n3. Follow the emailed link. [1]"),
            "{}",
            a.text
        );
    }

    #[test]
    fn a_sentence_introducing_a_list_brings_the_list() {
        let (index, ws) = setup();
        let terms = index.query_terms("my package says delivered but it is missing");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let a = compose_answer(&index, &terms, &hits, CFG);
        assert!(a.text.contains("Before reporting a missing package:\n- Check around your door.\n- Ask your neighbours.\n- Wait until the end of the day. [1]"), "{}", a.text);
    }

    #[test]
    fn bullet_tables_keep_only_the_matching_rows() {
        let (index, ws) = setup();
        let terms = index.query_terms("how do I reset the plug");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let a = compose_answer(&index, &terms, &hits, CFG);
        assert!(
            a.text
                .starts_with("- Device: Plug; Reset: hold 10 seconds [1]"),
            "{}",
            a.text
        );
    }

    #[test]
    fn weak_evidence_gives_no_answer_with_reason() {
        let (index, ws) = setup();
        let terms = index.query_terms("Do you sell robot vacuums in Ohio?");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let a = compose_answer(&index, &terms, &hits, CFG);
        assert_eq!(a.kind, AnswerKind::NoAnswer, "{a:?}");
        assert!(a.cited.is_empty());
        assert!(a.reason.contains("below the threshold"), "{}", a.reason);
        assert_eq!(a.text, NO_ANSWER_TEXT);
    }

    #[test]
    fn greetings_get_an_invitation() {
        let (index, _) = setup();
        let a = compose_answer(&index, &index.query_terms("hi there!"), &[], CFG);
        assert_eq!(a.kind, AnswerKind::NoQuestion);
    }
}
