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
    let stems: HashSet<String> = index.stems(text).into_iter().collect();
    stem_coverage(&stems, terms)
}

/// IDF-weighted share of the query's content words among `stems`.
pub(crate) fn stem_coverage(stems: &HashSet<String>, terms: &[QueryTerm]) -> f32 {
    let total: f32 = terms.iter().map(|t| t.idf).sum();
    if total <= 0.0 {
        return 0.0;
    }
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

/// Limits of the compressed context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextConfig {
    /// Passages (distinct documents) kept at most.
    pub max_passages: usize,
    /// Approximate token budget for all kept sentences together.
    pub token_budget: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            max_passages: 3,
            token_budget: 350,
        }
    }
}

/// One passage of compressed context: only the sentences (or list items) that matter for the
/// question, in passage order, with the citation number they are quoted under.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPassage {
    pub n: u32,
    pub hit: Hit,
    pub units: Vec<Unit>,
}

/// Approximate tokens of English text (about 1.3 word pieces per word).
pub fn approx_tokens(text: &str) -> usize {
    (text.split_whitespace().count() * 13).div_ceil(10)
}

fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Context compression: from the ranked `hits`, keep the sentences that matter for the query,
/// from at most `max_passages` distinct documents, deduplicated (a sentence quoted once is not
/// quoted again from another passage), within the token budget. Further passages must be about
/// as strong as the first and bring query words the earlier ones lacked.
pub fn compress(
    index: &KnowledgeIndex,
    terms: &[QueryTerm],
    hits: &[Hit],
    cfg: ContextConfig,
    min_evidence: f32,
) -> Vec<ContextPassage> {
    let Some(top) = hits.first() else {
        return Vec::new();
    };
    let top_evidence = evidence(index, terms, top);
    let mut out: Vec<ContextPassage> = Vec::new();
    let mut covered: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut budget = cfg.token_budget;
    for hit in hits {
        if out.len() >= cfg.max_passages.max(1) || budget == 0 {
            break;
        }
        if !out.is_empty() {
            let strong = hit.score >= top.score * SECOND_SOURCE_RATIO
                && evidence(index, terms, hit)
                    >= min_evidence.max(top_evidence * SECOND_SOURCE_EVIDENCE);
            if !strong || out.iter().any(|p| p.hit.document_id == hit.document_id) {
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
        let mut units = Vec::new();
        for unit in select_units(index, terms, hit) {
            let key = normalized(&unit.text);
            let cost = approx_tokens(&unit.text);
            // The first passage's first unit is always kept, so an answer is never empty.
            let first = out.is_empty() && units.is_empty();
            if seen.contains(&key) || (!first && cost > budget) {
                continue;
            }
            budget = budget.saturating_sub(cost);
            seen.insert(key);
            units.push(unit);
        }
        if units.is_empty() {
            continue;
        }
        covered.extend(index.matched_terms(hit, terms));
        out.push(ContextPassage {
            n: u32::try_from(out.len() + 1).unwrap_or(u32::MAX),
            hit: hit.clone(),
            units,
        });
    }
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
    let context = compress(
        index,
        terms,
        hits,
        ContextConfig {
            max_passages: cfg.max_citations,
            ..ContextConfig::default()
        },
        cfg.min_evidence,
    );
    if context.is_empty() {
        return Answer {
            kind: AnswerKind::NoAnswer,
            text: NO_ANSWER_TEXT.to_string(),
            cited: vec![],
            evidence: top_evidence,
            reason: "the best passages had no extractable text".into(),
        };
    }
    let parts: Vec<String> = context
        .iter()
        .map(|p| render(&p.units, p.n as usize))
        .collect();
    let cited: Vec<Hit> = context.into_iter().map(|p| p.hit).collect();
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
    fn compression_keeps_relevant_sentences_within_budget_and_without_repeats() {
        let index = KnowledgeIndex::in_memory().expect("index");
        let ws = WorkspaceId::new();
        let mk = |title: &str, body: &str| crate::index::tests::test_doc(ws, title, "", body);
        index
            .apply(
                &[
                    mk("Refunds", "Refunds reach your card within 5 to 7 business days. Our office has a cat. Refund emails come from billing."),
                    mk("Refund FAQ", "Refunds reach your card within 5 to 7 business days. Gift card refunds return to the gift card."),
                ],
                &[],
            )
            .expect("apply");
        let terms = index.query_terms("when do refunds reach my card");
        let hits = index
            .search(ws, &concierge_core::Principals::public(), &terms, 5)
            .expect("search");
        let ctx = compress(
            &index,
            &terms,
            &hits,
            ContextConfig {
                max_passages: 3,
                token_budget: 400,
            },
            0.2,
        );
        let all: Vec<&str> = ctx
            .iter()
            .flat_map(|p| p.units.iter().map(|u| u.text.as_str()))
            .collect();
        let repeated = all
            .iter()
            .filter(|t| t.starts_with("Refunds reach your card"))
            .count();
        assert_eq!(repeated, 1, "the shared sentence is quoted once: {all:?}");
        assert!(
            !all.iter().any(|t| t.contains("cat")),
            "irrelevant sentences are dropped: {all:?}"
        );
        assert_eq!(ctx[0].n, 1);
        // A tiny budget keeps only the first unit.
        let tight = compress(
            &index,
            &terms,
            &hits,
            ContextConfig {
                max_passages: 3,
                token_budget: 1,
            },
            0.2,
        );
        assert_eq!(tight.iter().map(|p| p.units.len()).sum::<usize>(), 1);
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
