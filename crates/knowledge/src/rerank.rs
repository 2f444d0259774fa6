//! The reranker: a linear model over features of a (query, passage) pair that a fused
//! first-stage ranking does not use well: how much of the query the title, the headings and the
//! best sentence cover, the dense similarity and the BM25 score relative to the best one.
//! The weights below are hand-set, not learned: learning them with cross-validation on
//! development qrels is still to do, and docs/evaluation.md shows they do not help yet.

use crate::index::{Hit, KnowledgeIndex, QueryTerm};
use crate::pipeline::Candidate;
use crate::text::units;
use std::collections::{HashMap, HashSet};

pub const FEATURES: [&str; 7] = [
    "rrf",
    "dense",
    "bm25_rel",
    "title_cov",
    "heading_cov",
    "best_unit_cov",
    "body_cov",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Reranker {
    pub weights: [f32; 7],
}

impl Default for Reranker {
    fn default() -> Self {
        // Hand-set: the fused rank dominates, coverage features nudge.
        Self {
            weights: [60.0, 1.0, 0.3, 0.3, 0.2, 0.3, 0.3],
        }
    }
}

use crate::answer::stem_coverage as coverage;

impl Reranker {
    /// The feature vector of one candidate.
    pub fn features(
        index: &KnowledgeIndex,
        terms: &[QueryTerm],
        fused_score: f32,
        hit: &Hit,
        dense: Option<f32>,
        bm25_top: f32,
    ) -> [f32; 7] {
        let set = |text: &str| -> HashSet<String> { index.stems(text).into_iter().collect() };
        let title = coverage(&set(&hit.title), terms);
        let heading = coverage(&set(&hit.heading_path.join(" ")), terms);
        let body = coverage(&set(&hit.text), terms);
        let best_unit = units(&hit.text)
            .iter()
            .map(|u| coverage(&set(&u.text), terms))
            .fold(0.0f32, f32::max);
        let bm25_rel = if bm25_top > 0.0 {
            (hit.score / bm25_top).min(1.0)
        } else {
            0.0
        };
        [
            fused_score,
            dense.unwrap_or(0.0),
            bm25_rel,
            title,
            heading,
            best_unit,
            body,
        ]
    }

    pub fn score(&self, features: &[f32; 7]) -> f32 {
        self.weights.iter().zip(features).map(|(w, x)| w * x).sum()
    }

    /// Reorders `pool` (fused candidates with their passages) by the model's score.
    pub fn rerank(
        &self,
        index: &KnowledgeIndex,
        terms: &[QueryTerm],
        pool: &[(Candidate, Hit)],
        dense: &HashMap<&str, f32>,
        bm25_top: f32,
    ) -> Vec<Candidate> {
        let mut scored: Vec<Candidate> = pool
            .iter()
            .map(|(c, h)| {
                let f = Self::features(
                    index,
                    terms,
                    c.score,
                    h,
                    dense.get(c.chunk_id.as_str()).copied(),
                    bm25_top,
                );
                Candidate {
                    chunk_id: c.chunk_id.clone(),
                    document_id: c.document_id.clone(),
                    score: self.score(&f),
                }
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
