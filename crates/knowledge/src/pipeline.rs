//! The read path: BM25 and dense candidates, fused by reciprocal rank, then reranked. Every
//! stage's candidates are kept for inspection (`GET /v1/knowledge/search`); the answerer and the
//! evaluation use this same pipeline.

use crate::dense::DenseIndex;
use crate::embed::Embedder;
use crate::index::{Hit, KnowledgeIndex, QueryTerm};
use crate::rerank::Reranker;
use crate::{KnowledgeError, Result};
use concierge_core::{Principals, WorkspaceId};
use std::collections::HashMap;
use std::sync::Arc;

/// Which stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bm25,
    Dense,
    Hybrid,
    HybridRerank,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Bm25, Mode::Dense, Mode::Hybrid, Mode::HybridRerank];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Bm25 => "bm25",
            Mode::Dense => "dense",
            Mode::Hybrid => "hybrid",
            Mode::HybridRerank => "hybrid+rerank",
        }
    }

    fn uses_dense(self) -> bool {
        !matches!(self, Mode::Bm25)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Candidates taken from each first stage.
    pub candidates: usize,
    /// Reciprocal-rank-fusion constant (60 in the original paper).
    pub rrf_k: f32,
    /// Candidates passed to the reranker.
    pub rerank_depth: usize,
    /// Weight of the dense list in the fusion (BM25's is 1).
    pub dense_weight: f32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            candidates: 50,
            rrf_k: 60.0,
            rerank_depth: 30,
            dense_weight: 1.0,
        }
    }
}

/// One candidate of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub chunk_id: String,
    pub document_id: String,
    pub score: f32,
}

/// What retrieval found, stage by stage; `hits` is the final ranking, best first.
#[derive(Debug, Clone, Default)]
pub struct Retrieval {
    pub terms: Vec<QueryTerm>,
    pub bm25: Vec<Candidate>,
    pub dense: Vec<Candidate>,
    pub fused: Vec<Candidate>,
    pub reranked: Vec<Candidate>,
    pub hits: Vec<Hit>,
    /// The query's embedding, when dense retrieval ran.
    pub query_vector: Option<Vec<f32>>,
}

pub struct Pipeline {
    pub index: Arc<KnowledgeIndex>,
    pub dense: Arc<DenseIndex>,
    pub embedder: Option<Arc<dyn Embedder>>,
    pub reranker: Reranker,
    pub config: PipelineConfig,
}

/// Weighted reciprocal-rank fusion of ranked lists: `(list, weight)`.
pub fn rrf(lists: &[(&[Candidate], f32)], k: f32) -> Vec<Candidate> {
    let mut scores: HashMap<&str, (f32, &Candidate)> = HashMap::new();
    for (list, weight) in lists {
        for (rank, c) in list.iter().enumerate() {
            let e = scores.entry(c.chunk_id.as_str()).or_insert((0.0, c));
            e.0 += weight / (k + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<Candidate> = scores
        .into_values()
        .map(|(score, c)| Candidate {
            chunk_id: c.chunk_id.clone(),
            document_id: c.document_id.clone(),
            score,
        })
        .collect();
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    fused
}

impl Pipeline {
    /// The best mode this pipeline can run (no embedder: BM25 only).
    pub fn default_mode(&self) -> Mode {
        if self.embedder.is_some() {
            Mode::HybridRerank
        } else {
            Mode::Bm25
        }
    }

    pub async fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let Some(embedder) = &self.embedder else {
            return Ok(None);
        };
        let mut v = embedder
            .embed(&[query.to_string()])
            .await
            .map_err(|e| KnowledgeError::Embedding(e.0))?;
        Ok(v.pop())
    }

    /// Runs the pipeline up to `mode` and returns at most `k` hits.
    pub async fn retrieve(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &str,
        k: usize,
        mode: Mode,
    ) -> Result<Retrieval> {
        let mode = if mode.uses_dense() && self.embedder.is_none() {
            Mode::Bm25
        } else {
            mode
        };
        let terms = self.index.query_terms(query);
        let mut out = Retrieval {
            terms,
            ..Retrieval::default()
        };
        let depth = self.config.candidates.max(k);
        let mut texts: HashMap<String, Hit> = HashMap::new();
        if mode != Mode::Dense {
            let hits = self
                .index
                .search(workspace, principals, &out.terms, depth)?;
            out.bm25 = hits
                .iter()
                .map(|h| Candidate {
                    chunk_id: h.chunk_id.clone(),
                    document_id: h.document_id.clone(),
                    score: h.score,
                })
                .collect();
            texts.extend(hits.into_iter().map(|h| (h.chunk_id.clone(), h)));
        }
        if mode.uses_dense() {
            out.query_vector = self.embed_query(query).await?;
            if let Some(q) = &out.query_vector {
                out.dense = self
                    .dense
                    .search(workspace, principals, q, depth)
                    .into_iter()
                    .map(|h| Candidate {
                        chunk_id: h.chunk_id,
                        document_id: h.document_id.to_string(),
                        score: h.score,
                    })
                    .collect();
            }
        }
        let ranked: Vec<Candidate> = match mode {
            Mode::Bm25 => out.bm25.clone(),
            Mode::Dense => out.dense.clone(),
            Mode::Hybrid | Mode::HybridRerank => {
                out.fused = rrf(
                    &[(&out.bm25, 1.0), (&out.dense, self.config.dense_weight)],
                    self.config.rrf_k,
                );
                out.fused.clone()
            }
        };
        // Fetch the text of candidates only the dense stage found.
        let missing: Vec<String> = ranked
            .iter()
            .take(depth)
            .filter(|c| !texts.contains_key(&c.chunk_id))
            .map(|c| c.chunk_id.clone())
            .collect();
        if !missing.is_empty() {
            texts.extend(self.index.chunks_by_id(&missing)?);
        }
        let final_ranking = if mode == Mode::HybridRerank {
            let pool: Vec<(Candidate, Hit)> = ranked
                .iter()
                .take(self.config.rerank_depth)
                .filter_map(|c| texts.get(&c.chunk_id).map(|h| (c.clone(), h.clone())))
                .collect();
            let dense_scores: HashMap<&str, f32> = out
                .dense
                .iter()
                .map(|c| (c.chunk_id.as_str(), c.score))
                .collect();
            let bm25_top = out.bm25.first().map_or(0.0, |c| c.score);
            out.reranked =
                self.reranker
                    .rerank(&self.index, &out.terms, &pool, &dense_scores, bm25_top);
            out.reranked.clone()
        } else {
            ranked
        };
        out.hits = final_ranking
            .iter()
            .filter_map(|c| {
                texts.get(&c.chunk_id).map(|h| Hit {
                    score: c.score,
                    ..h.clone()
                })
            })
            .take(k)
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str) -> Candidate {
        Candidate {
            chunk_id: id.into(),
            document_id: "d".into(),
            score: 0.0,
        }
    }

    #[test]
    fn rrf_rewards_agreement_between_lists() {
        let a = vec![c("x"), c("y"), c("z")];
        let b = vec![c("y"), c("w")];
        let fused = rrf(&[(&a, 1.0), (&b, 1.0)], 60.0);
        let ids: Vec<&str> = fused.iter().map(|c| c.chunk_id.as_str()).collect();
        assert_eq!(ids[0], "y", "in both lists");
        assert_eq!(ids.len(), 4);
        assert!((fused[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
    }
}
