//! Resolved questions: past questions of a workspace, each with the documents that answered
//! it (imported past tickets, questions written through the API, answers a customer
//! confirmed). Support questions repeat; when a new question resembles past ones, the documents
//! that answered them are strong evidence, whatever words the documents themselves use.
//!
//! The model is a similarity-weighted vote of the [`NEIGHBOURS`] most similar
//! past questions (TF-IDF cosine over the index's stems: sublinear term frequency, smoothed
//! IDF over the past questions): `vote(d) = Σ sim(q, p) · [d answered p] / k`. A question unlike
//! every past one gets small votes, so the signal fades instead of guessing. The reranker adds
//! `weight · vote` to each candidate of a voted document (docs/evaluation.md measures it); it
//! never adds documents the first stages did not return, so permissions stay with them.

use concierge_core::{Document, Store, StoreResult, WorkspaceId};
use std::collections::{HashMap, HashSet};

/// The ids within their source of a workspace's documents: what a resolved question may name.
pub async fn nameable_documents(
    store: &dyn Store,
    workspace: WorkspaceId,
) -> StoreResult<HashSet<String>> {
    Ok(store
        .workspace_documents(workspace)
        .await?
        .into_iter()
        .map(|d| d.external_id)
        .collect())
}

/// One past question and the documents (ids in the knowledge base) that answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQuestion {
    /// Stable id (a ticket key, a query id), used to leave a question out of its own vote.
    pub id: String,
    pub text: String,
    pub documents: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    text: String,
    documents: Vec<String>,
}

/// The resolved questions of one workspace, ready to vote.
#[derive(Debug, Clone, Default)]
pub struct ResolvedQuestions {
    entries: Vec<Entry>,
    idf: HashMap<String, f32>,
    /// The IDF of a word no past question has.
    unseen: f32,
    /// Inverted index: stem → (entry, L2-normalised TF-IDF weight), so a vote reads only the
    /// past questions that share a word with the query.
    postings: HashMap<String, Vec<(u32, f32)>>,
}

/// Past questions that vote (chosen with repeated 5-fold cross-validation, docs/evaluation.md).
pub const NEIGHBOURS: usize = 3;

/// Weight of a document's vote in the reranker's score (same units as the standardised
/// first-stage scores; chosen with the neighbours).
pub const VOTE_WEIGHT: f32 = 8.0;

fn term_counts(stems: Vec<String>) -> HashMap<String, f32> {
    let mut counts: HashMap<String, f32> = HashMap::new();
    for s in stems {
        if !crate::text::is_stopword(&s) && s.chars().any(char::is_alphanumeric) {
            *counts.entry(s).or_default() += 1.0;
        }
    }
    counts
}

fn tf_idf(
    counts: HashMap<String, f32>,
    idf: &HashMap<String, f32>,
    unseen: f32,
) -> HashMap<String, f32> {
    let mut v: HashMap<String, f32> = counts
        .into_iter()
        .map(|(t, c)| {
            let w = (1.0 + c.ln()) * idf.get(&t).copied().unwrap_or(unseen);
            (t, w)
        })
        .collect();
    let norm = v.values().map(|w| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.values_mut().for_each(|w| *w /= norm);
    }
    v
}

impl ResolvedQuestions {
    /// Builds the model; `stems` is the analyzer the questions are read with (the index's).
    pub fn build(questions: Vec<ResolvedQuestion>, stems: impl Fn(&str) -> Vec<String>) -> Self {
        let questions: Vec<ResolvedQuestion> = questions
            .into_iter()
            .filter(|q| !q.documents.is_empty())
            .collect();
        let counts: Vec<HashMap<String, f32>> = questions
            .iter()
            .map(|q| term_counts(stems(&q.text)))
            .collect();
        let mut df: HashMap<String, f32> = HashMap::new();
        for c in &counts {
            for t in c.keys() {
                *df.entry(t.clone()).or_default() += 1.0;
            }
        }
        let n = questions.len() as f32;
        let idf: HashMap<String, f32> = df
            .into_iter()
            .map(|(t, d)| (t, ((1.0 + n) / (1.0 + d)).ln() + 1.0))
            .collect();
        let unseen = ((1.0 + n) / 1.0).ln() + 1.0;
        let mut postings: HashMap<String, Vec<(u32, f32)>> = HashMap::new();
        let mut entries = Vec::with_capacity(questions.len());
        for (i, (q, c)) in questions.into_iter().zip(counts).enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for (t, w) in tf_idf(c, &idf, unseen) {
                postings.entry(t).or_default().push((i, w));
            }
            entries.push(Entry {
                id: q.id,
                text: q.text,
                documents: q.documents,
            });
        }
        Self {
            entries,
            idf,
            unseen,
            postings,
        }
    }

    /// Builds the model from questions that name their documents by id within their source
    /// ([`Document::external_id`]): each name stands for every one of `documents` with that id,
    /// and names none of them has are dropped.
    pub fn build_named(
        questions: impl IntoIterator<Item = ResolvedQuestion>,
        documents: &[Document],
        stems: impl Fn(&str) -> Vec<String>,
    ) -> Self {
        let mut by_name: HashMap<&str, Vec<String>> = HashMap::new();
        for d in documents {
            by_name
                .entry(d.external_id.as_str())
                .or_default()
                .push(d.id.to_string());
        }
        let questions = questions
            .into_iter()
            .map(|q| ResolvedQuestion {
                documents: q
                    .documents
                    .iter()
                    .filter_map(|name| by_name.get(name.as_str()))
                    .flatten()
                    .cloned()
                    .collect(),
                ..q
            })
            .collect();
        Self::build(questions, stems)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The votes for `query` by document: the `k` most similar past questions, each voting
    /// for its documents with its cosine similarity, divided by `k`. `exclude` is for
    /// evaluations, which must never learn from the question they score: the past question
    /// with that id, and any with exactly the query's text, do not vote. In the product it is
    /// `None`, and a question asked before word for word is the strongest neighbour.
    pub fn votes(
        &self,
        query: &str,
        stems: impl Fn(&str) -> Vec<String>,
        k: usize,
        exclude: Option<&str>,
    ) -> HashMap<String, f32> {
        let mut votes: HashMap<String, f32> = HashMap::new();
        if self.entries.is_empty() || k == 0 {
            return votes;
        }
        let q = tf_idf(term_counts(stems(query)), &self.idf, self.unseen);
        let mut acc: HashMap<u32, f32> = HashMap::new();
        for (t, w) in &q {
            for (i, x) in self.postings.get(t).map_or(&[][..], Vec::as_slice) {
                *acc.entry(*i).or_default() += w * x;
            }
        }
        let trimmed = query.trim();
        let mut sims: Vec<(f32, &Entry)> = acc
            .into_iter()
            .filter_map(|(i, sim)| self.entries.get(i as usize).map(|e| (sim, e)))
            .filter(|(sim, e)| {
                *sim > 0.0 && exclude.is_none_or(|id| e.id != id && e.text.trim() != trimmed)
            })
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        for (sim, e) in sims.into_iter().take(k) {
            for d in &e.documents {
                *votes.entry(d.clone()).or_default() += sim / k as f32;
            }
        }
        votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(text: &str) -> Vec<String> {
        text.split_whitespace().map(|w| w.to_lowercase()).collect()
    }

    fn q(id: &str, text: &str, docs: &[&str]) -> ResolvedQuestion {
        ResolvedQuestion {
            id: id.into(),
            text: text.into(),
            documents: docs.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn similar_past_questions_vote_for_their_documents() {
        let model = ResolvedQuestions::build(
            vec![
                q(
                    "t1",
                    "replace my lost credit card",
                    &["card-replacement", "verify-identity"],
                ),
                q(
                    "t2",
                    "close my savings account",
                    &["closing-accounts", "verify-identity"],
                ),
                q(
                    "t3",
                    "my credit card was stolen replace it",
                    &["card-replacement"],
                ),
                q("t4", "no documents", &[]),
            ],
            stems,
        );
        assert_eq!(
            model.len(),
            3,
            "a question without documents teaches nothing"
        );
        let votes = model.votes("lost card please replace", stems, 2, None);
        assert!(votes["card-replacement"] > votes["verify-identity"]);
        assert!(
            !votes.contains_key("closing-accounts"),
            "only the 2 nearest vote"
        );
        assert!(votes["card-replacement"] > 0.0 && votes["card-replacement"] <= 1.0);
        // Unrelated words: no vote at all.
        assert!(model.votes("weather tomorrow", stems, 2, None).is_empty());
    }

    #[test]
    fn a_question_never_votes_for_itself() {
        let model = ResolvedQuestions::build(
            vec![
                q("t1", "replace my lost credit card", &["card-replacement"]),
                q("t2", "close my savings account", &["closing-accounts"]),
            ],
            stems,
        );
        assert!(
            !model
                .votes("replace my lost credit card", stems, 3, Some("evaluated"))
                .contains_key("card-replacement"),
            "same text, in an evaluation"
        );
        assert!(
            model.votes("replace my lost credit card", stems, 1, None)["card-replacement"] > 0.99,
            "in the product, a question asked before word for word votes fully"
        );
        assert!(
            !model
                .votes("replace lost credit card", stems, 3, Some("t1"))
                .contains_key("card-replacement"),
            "same id"
        );
        assert!(model.votes("replace lost credit card", stems, 1, None)["card-replacement"] > 0.5);
    }
}
