//! A user-provided cross-encoder (a BERT-style `*ForSequenceClassification` checkpoint, such as
//! the ms-marco MiniLM rerankers): a folder with `config.json`, `model.safetensors` and
//! `tokenizer.json`, run by [`crate::bert`]. Pairs are encoded `[CLS] question [SEP] passage
//! [SEP]`, truncated longest-first to the model's positions (at most 512 tokens), and scored on
//! `threads` threads in parallel.

use crate::bert::{Bert, BertConfig, ClassificationHead, Tensors};
use async_trait::async_trait;
use concierge_knowledge::embed::EmbedError;
use concierge_knowledge::rerank::CrossEncoder;
use std::path::Path;
use std::sync::Arc;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

struct Model {
    bert: Bert,
    head: ClassificationHead,
    tokenizer: Tokenizer,
}

pub struct BertCrossEncoder {
    model: Arc<Model>,
    threads: usize,
    model_id: String,
}

impl BertCrossEncoder {
    /// Loads `dir/config.json`, `dir/model.safetensors` and `dir/tokenizer.json`.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let mut tensors = Tensors::from_file(&dir.join("model.safetensors"))?;
        let h = config.hidden_size;
        let max_tokens = config.max_position_embeddings.min(512);
        let bert = Bert::from_tensors(config, &mut tensors)?;
        let head = ClassificationHead::from_tensors(h, &mut tensors)?;
        let path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| EmbedError(format!("cannot load {}: {e}", path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..Default::default()
            }))
            .map_err(|e| EmbedError(e.to_string()))?;
        tokenizer.with_padding(None);
        let name = dir.file_name().map_or_else(
            || "cross-encoder".into(),
            |n| n.to_string_lossy().to_string(),
        );
        Ok(Self {
            model: Arc::new(Model {
                bert,
                head,
                tokenizer,
            }),
            threads: threads.max(1),
            model_id: format!("bert:{name}"),
        })
    }
}

impl Model {
    fn score_one(&self, query: &str, passage: &str) -> Result<f32, EmbedError> {
        let enc = self
            .tokenizer
            .encode((query, passage), true)
            .map_err(|e| EmbedError(e.to_string()))?;
        let hidden = self.bert.forward(enc.get_ids(), enc.get_type_ids())?;
        Ok(self.head.score(&hidden))
    }

    fn score_all(
        &self,
        query: &str,
        passages: &[String],
        threads: usize,
    ) -> Result<Vec<f32>, EmbedError> {
        let per_thread = passages.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = passages
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|p| self.score_one(query, p))
                            .collect::<Result<Vec<f32>, EmbedError>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(passages.len());
            for w in workers {
                out.extend(
                    w.join()
                        .map_err(|_| EmbedError("cross-encoder thread panicked".into()))??,
                );
            }
            Ok(out)
        })
    }
}

#[async_trait]
impl CrossEncoder for BertCrossEncoder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn score(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError> {
        let model = Arc::clone(&self.model);
        let (query, passages, threads) = (query.to_string(), passages.to_vec(), self.threads);
        tokio::task::spawn_blocking(move || model.score_all(&query, &passages, threads))
            .await
            .map_err(|e| EmbedError(format!("cross-encoder task failed: {e}")))?
    }
}
