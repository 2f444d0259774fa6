//! The reranker: a linear model over **standardised** first-stage scores, applied to the top of
//! the rank-fused list. Rank fusion (RRF) throws the scores away; the reranker brings them
//! back, each as a z-score over every chunk the asker may read (so a strong BM25 match and a
//! strong semantic match are comparable across queries), with the dense similarity taken
//! against a pseudo-relevance-feedback query (the question's vector moved towards its five
//! nearest chunks).
//!
//! The weights were chosen on development qrels (τ²-bench banking, 54 queries) with repeated
//! 5-fold cross-validation over queries (docs/evaluation.md): a logistic regression on the
//! two z-scores gives a dense share of 0.46, the cross-validated choice of the fixed weight is
//! 0.5. Other features (title / heading / best-sentence coverage of the query, sentence-level
//! similarity, document centroid, ranks) were tried in the same set-up and added nothing, so
//! they are not computed.
//!
//! When the workspace has resolved questions, each candidate also gets `vote_weight · vote` of
//! its document ([`crate::resolved`]): documents that answered similar past questions move up.

use crate::embed::EmbedError;
use crate::index::ScoreStats;
use crate::pipeline::Candidate;
use async_trait::async_trait;
use std::collections::HashMap;

/// A cross-encoder: reads the question and a passage together and scores their relevance
/// (higher is more relevant). Optional, user-provided (no such weights ship with the product);
/// when configured it reorders the top of the reranked list.
#[async_trait]
pub trait CrossEncoder: Send + Sync {
    fn model_id(&self) -> &str;
    /// One score per passage, in order.
    async fn score(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError>;
}

pub const FEATURES: [&str; 2] = ["bm25_z", "dense_feedback_z"];

#[derive(Debug, Clone, PartialEq)]
pub struct Reranker {
    pub weights: [f32; 2],
    /// Weight of a document's vote from resolved questions ([`crate::resolved`]).
    pub vote_weight: f32,
}

impl Default for Reranker {
    fn default() -> Self {
        Self {
            weights: [0.5, 0.5],
            vote_weight: crate::resolved::VOTE_WEIGHT,
        }
    }
}

/// What the reranker knows about a pool: each candidate's raw scores and each score's
/// distribution over the readable chunks.
pub struct RerankInput<'a> {
    pub pool: &'a [Candidate],
    pub bm25: &'a HashMap<String, f32>,
    pub bm25_stats: ScoreStats,
    pub dense: &'a HashMap<String, f32>,
    pub dense_stats: ScoreStats,
    /// Votes of resolved questions by document id (empty when the workspace has none).
    pub votes: &'a HashMap<String, f32>,
}

impl Reranker {
    /// The feature vector of one candidate: a chunk that matches no query term has BM25 score 0.
    pub fn features(input: &RerankInput<'_>, chunk_id: &str) -> [f32; 2] {
        let bm25 = input.bm25.get(chunk_id).copied().unwrap_or(0.0);
        let dense = input
            .dense
            .get(chunk_id)
            .map_or(0.0, |d| input.dense_stats.z(*d));
        [input.bm25_stats.z(bm25), dense]
    }

    pub fn score(&self, features: &[f32; 2]) -> f32 {
        self.weights.iter().zip(features).map(|(w, x)| w * x).sum()
    }

    /// The pool reordered by the model's score (ties by chunk id).
    pub fn rerank(&self, input: &RerankInput<'_>) -> Vec<Candidate> {
        let mut scored: Vec<Candidate> = input
            .pool
            .iter()
            .map(|c| Candidate {
                chunk_id: c.chunk_id.clone(),
                document_id: c.document_id.clone(),
                score: self.score(&Self::features(input, &c.chunk_id))
                    + self.vote_weight * input.votes.get(&c.document_id).copied().unwrap_or(0.0),
            })
            .collect();
        scored.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.chunk_id.cmp(&b.chunk_id))
        });
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str) -> Candidate {
        Candidate {
            chunk_id: id.into(),
            document_id: format!("d-{id}"),
            score: 0.0,
        }
    }

    #[test]
    fn standardised_scores_decide_and_missing_bm25_counts_as_zero() {
        let pool = vec![c("lexical"), c("semantic"), c("both")];
        let bm25: HashMap<String, f32> =
            [("lexical".to_string(), 12.0), ("both".to_string(), 8.0)].into();
        let dense: HashMap<String, f32> = [
            ("lexical".to_string(), 0.30),
            ("semantic".to_string(), 0.70),
            ("both".to_string(), 0.60),
        ]
        .into();
        let input = RerankInput {
            pool: &pool,
            bm25: &bm25,
            bm25_stats: ScoreStats {
                readable: 100,
                mean: 2.0,
                std: 4.0,
            },
            dense: &dense,
            dense_stats: ScoreStats {
                readable: 100,
                mean: 0.2,
                std: 0.1,
            },
            votes: &HashMap::new(),
        };
        assert_eq!(Reranker::features(&input, "semantic"), [-0.5, 5.0]);
        let order: Vec<String> = Reranker::default()
            .rerank(&input)
            .into_iter()
            .map(|c| c.chunk_id)
            .collect();
        // both: 0.5*1.5 + 0.5*4 = 2.75; semantic: 0.5*-0.5 + 0.5*5 = 2.25; lexical: 0.5*2.5 + 0.5*1 = 1.75
        assert_eq!(order, vec!["both", "semantic", "lexical"]);
    }

    #[test]
    fn votes_of_resolved_questions_move_their_documents_up() {
        let pool = vec![c("first"), c("second")];
        let bm25: HashMap<String, f32> =
            [("first".to_string(), 6.0), ("second".to_string(), 4.0)].into();
        let stats = ScoreStats {
            readable: 100,
            mean: 0.0,
            std: 1.0,
        };
        let votes: HashMap<String, f32> = [("d-second".to_string(), 0.5)].into();
        let input = RerankInput {
            pool: &pool,
            bm25: &bm25,
            bm25_stats: stats,
            dense: &HashMap::new(),
            dense_stats: stats,
            votes: &votes,
        };
        let reranked = Reranker::default().rerank(&input);
        // first: 0.5*6 = 3; second: 0.5*4 + 8*0.5 = 6
        assert_eq!(reranked[0].chunk_id, "second");
        assert!((reranked[0].score - 6.0).abs() < 1e-5);
        let no_votes = Reranker {
            vote_weight: 0.0,
            ..Reranker::default()
        }
        .rerank(&input);
        assert_eq!(no_votes[0].chunk_id, "first");
    }
}
