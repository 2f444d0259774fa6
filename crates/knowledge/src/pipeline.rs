//! The read path: BM25 and dense candidates, fused by reciprocal rank, then reranked. Every
//! stage's candidates are kept for inspection (`GET /v1/knowledge/search`); the answerer and the
//! evaluation use this same pipeline.

use crate::dense::DenseIndex;
use crate::embed::chunk_text_for_embedding;
use crate::embed::{Embedder, mean, normalized, query_paragraphs};
use crate::index::{Hit, KnowledgeIndex, QueryTerm};
use crate::rerank::{CrossEncoder, RerankInput, Reranker};
use crate::resolved::{NEIGHBOURS, ResolvedQuestions};
use crate::{KnowledgeError, Result};
use concierge_core::{Principals, WorkspaceId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    /// Top reranked candidates the cross-encoder (when configured) reorders.
    pub cross_depth: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            candidates: 50,
            rrf_k: 60.0,
            rerank_depth: 100,
            dense_weight: 1.0,
            cross_depth: 20,
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
    /// The top of `reranked` as the cross-encoder ordered it (empty without one).
    pub cross_encoded: Vec<Candidate>,
    /// Votes of the workspace's resolved questions by document id, highest first (empty
    /// without resolved questions or outside the reranking mode).
    pub votes: Vec<(String, f32)>,
    pub hits: Vec<Hit>,
    /// The query's embedding, when dense retrieval ran.
    pub query_vector: Option<Vec<f32>>,
}

pub struct Pipeline {
    pub index: Arc<KnowledgeIndex>,
    pub dense: Arc<DenseIndex>,
    pub embedder: Option<Arc<dyn Embedder>>,
    pub reranker: Reranker,
    /// A user-provided cross-encoder run after the reranker (none by default).
    pub cross_encoder: Option<Arc<dyn CrossEncoder>>,
    pub config: PipelineConfig,
    /// Each workspace's resolved questions (see [`crate::resolved`]), voting in the reranker.
    pub resolved: RwLock<HashMap<WorkspaceId, Arc<ResolvedQuestions>>>,
}

/// Options of one retrieval beyond the query itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetrieveOptions<'a> {
    /// A resolved question that must not vote (the one being evaluated).
    pub exclude_resolved: Option<&'a str>,
}

/// Nearest chunks whose mean moves the query vector (pseudo-relevance feedback).
pub const FEEDBACK_CHUNKS: usize = 5;

/// Graph candidate-list size of the feedback search (a few neighbours, approximate is enough).
pub const FEEDBACK_EF: usize = 32;

/// Readable rows sampled for the dense score distribution (exact below it).
pub const STATS_SAMPLE: usize = 4096;

/// `candidates` reordered by the cross-encoder's score of (query, passage), the passage being
/// the text the chunk was embedded as (title, heading path, body). Candidates without a text
/// keep their place at the end.
async fn cross_encode(
    cross: &dyn CrossEncoder,
    query: &str,
    candidates: &[Candidate],
    texts: &HashMap<String, Hit>,
) -> Result<Vec<Candidate>> {
    let (with_text, without): (Vec<&Candidate>, Vec<&Candidate>) = candidates
        .iter()
        .partition(|c| texts.contains_key(&c.chunk_id));
    let passages: Vec<String> = with_text
        .iter()
        .map(|c| {
            let h = &texts[&c.chunk_id];
            chunk_text_for_embedding(&h.title, &h.heading_path, &h.text)
        })
        .collect();
    let scores = cross
        .score(query, &passages)
        .await
        .map_err(|e| KnowledgeError::Embedding(e.0))?;
    let mut scored: Vec<Candidate> = with_text
        .into_iter()
        .zip(scores)
        .map(|(c, score)| Candidate { score, ..c.clone() })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    scored.extend(without.into_iter().cloned());
    Ok(scored)
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

    /// Replaces a workspace's resolved questions (an empty set removes them).
    pub fn set_resolved(&self, workspace: WorkspaceId, questions: ResolvedQuestions) {
        let mut map = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if questions.is_empty() {
            map.remove(&workspace);
        } else {
            map.insert(workspace, Arc::new(questions));
        }
    }

    fn resolved_of(&self, workspace: WorkspaceId) -> Option<Arc<ResolvedQuestions>> {
        self.resolved
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&workspace)
            .cloned()
    }

    /// The query's vector: the mean of its paragraphs' vectors (see
    /// [`crate::embed::query_paragraphs`]), unit length.
    pub async fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let Some(embedder) = &self.embedder else {
            return Ok(None);
        };
        let paragraphs = query_paragraphs(query);
        if paragraphs.is_empty() {
            return Ok(None);
        }
        let vectors = embedder
            .embed(&paragraphs)
            .await
            .map_err(|e| KnowledgeError::Embedding(e.0))?;
        Ok(mean(vectors.iter().map(Vec::as_slice)).map(normalized))
    }

    /// Dense search with pseudo-relevance feedback: the query vector moves towards the mean of
    /// its [`FEEDBACK_CHUNKS`] nearest chunks before the real search (which helps long and
    /// vague queries find the vocabulary of the knowledge base; measured in
    /// docs/evaluation.md). Returns the moved vector and its hits.
    fn dense_search(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        q0: Vec<f32>,
        depth: usize,
    ) -> (Vec<f32>, Vec<Candidate>) {
        let first: Vec<String> = self
            .dense
            .search_with_ef(workspace, principals, &q0, FEEDBACK_CHUNKS, FEEDBACK_EF)
            .into_iter()
            .map(|h| h.chunk_id)
            .collect();
        let q1 = match self.dense.mean_vector(&first) {
            Some(mean) => normalized(q0.iter().zip(&mean).map(|(a, b)| a + b).collect()),
            None => q0,
        };
        let hits = self
            .dense
            .search(workspace, principals, &q1, depth)
            .into_iter()
            .map(|h| Candidate {
                chunk_id: h.chunk_id,
                document_id: h.document_id.to_string(),
                score: h.score,
            })
            .collect();
        (q1, hits)
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
        self.retrieve_with_options(
            workspace,
            principals,
            query,
            k,
            mode,
            RetrieveOptions::default(),
        )
        .await
    }

    /// [`Pipeline::retrieve`] with options.
    pub async fn retrieve_with_options(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &str,
        k: usize,
        mode: Mode,
        options: RetrieveOptions<'_>,
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
        if mode.uses_dense()
            && let Some(q0) = self.embed_query(query).await?
        {
            let (q1, hits) = self.dense_search(workspace, principals, q0, depth);
            out.dense = hits;
            out.query_vector = Some(q1);
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
        let final_ranking = match (&out.query_vector, mode) {
            (Some(q), Mode::HybridRerank) => {
                let depth = self.config.rerank_depth.min(ranked.len());
                let pool = &ranked[..depth];
                let ids: Vec<String> = pool.iter().map(|c| c.chunk_id.clone()).collect();
                let mut bm25: HashMap<String, f32> = out
                    .bm25
                    .iter()
                    .map(|c| (c.chunk_id.clone(), c.score))
                    .collect();
                let unscored: Vec<String> = ids
                    .iter()
                    .filter(|id| !bm25.contains_key(*id))
                    .cloned()
                    .collect();
                bm25.extend(
                    self.index
                        .scores_for(workspace, principals, &out.terms, &unscored)?,
                );
                let votes = match self.resolved_of(workspace) {
                    Some(model) => model.votes(
                        query,
                        |t| self.index.stems(t),
                        NEIGHBOURS,
                        options.exclude_resolved,
                    ),
                    None => HashMap::new(),
                };
                let input = RerankInput {
                    pool,
                    bm25: &bm25,
                    bm25_stats: self.index.score_stats(workspace, principals, &out.terms)?,
                    dense: &self.dense.scores_for(q, &ids),
                    dense_stats: self
                        .dense
                        .score_stats(workspace, principals, q, STATS_SAMPLE),
                    votes: &votes,
                };
                out.reranked = self.reranker.rerank(&input);
                // Only documents the asker may read (those in the pool) are shown.
                out.votes = votes
                    .into_iter()
                    .filter(|(d, _)| pool.iter().any(|c| &c.document_id == d))
                    .collect();
                out.votes
                    .sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let mut ranking = out.reranked.clone();
                ranking.extend(ranked[depth..].iter().cloned());
                if let Some(cross) = &self.cross_encoder {
                    let top = self.config.cross_depth.min(ranking.len());
                    let missing: Vec<String> = ranking[..top]
                        .iter()
                        .filter(|c| !texts.contains_key(&c.chunk_id))
                        .map(|c| c.chunk_id.clone())
                        .collect();
                    texts.extend(self.index.chunks_by_id(&missing)?);
                    out.cross_encoded =
                        cross_encode(cross.as_ref(), query, &ranking[..top], &texts).await?;
                    ranking.splice(..top, out.cross_encoded.iter().cloned());
                }
                ranking
            }
            _ => ranked,
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
