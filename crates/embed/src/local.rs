//! all-MiniLM-L6-v2 in process through ONNX Runtime: tokenizer.json (WordPiece, lower case,
//! 256 tokens) → ORT (`last_hidden_state` [batch, seq, 384]) → mean pooling over the attention
//! mask → L2 normalization, exactly as sentence-transformers computes it.

use crate::models::ModelFiles;
use async_trait::async_trait;
use concierge_knowledge::embed::{EmbedError, Embedder};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::sync::{Arc, Mutex, OnceLock};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

pub const DIMS: usize = 384;
pub const MAX_TOKENS: usize = 256;
/// Texts per ONNX Runtime call (sorted by length first so batches pad little).
const BATCH: usize = 32;

fn err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError(e.to_string())
}

/// ONNX Runtime allows one environment per process; it must outlive every session.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(dylib: &std::path::Path) -> Result<(), EmbedError> {
    let env = ENVIRONMENT.get_or_init(|| {
        ort::init_from(dylib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", dylib.display()))?
            .with_name("concierge")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    });
    env.as_ref().map(|_| ()).map_err(|e| EmbedError(e.clone()))
}

struct Model {
    session: Session,
    tokenizer: Tokenizer,
    token_type_ids: bool,
}

pub struct LocalEmbedder {
    model: Arc<Mutex<Model>>,
    model_id: String,
}

impl LocalEmbedder {
    /// Loads the model files (see [`crate::models`]); `threads` is ONNX Runtime's intra-op pool.
    pub fn load(files: &ModelFiles, threads: usize) -> Result<Self, EmbedError> {
        environment(&files.runtime)?;
        let env = ENVIRONMENT
            .get()
            .and_then(|e| e.as_ref().ok())
            .ok_or_else(|| EmbedError("ONNX Runtime is not initialized".into()))?;
        let session = Session::builder(env)
            .map_err(err)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(ort::Error::<()>::from(e)))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| err(ort::Error::<()>::from(e)))?
            // Idle pool threads sleep instead of spinning: a spinning pool steals the cores
            // that the rest of the search (BM25, the graph walk) runs on right after the
            // question's embedding.
            .with_intra_op_spinning(false)
            .map_err(|e| err(ort::Error::<()>::from(e)))?
            // Input shapes change with every batch; memory patterns would be planned (and kept)
            // per shape.
            .with_memory_pattern(false)
            .map_err(|e| err(ort::Error::<()>::from(e)))?
            .with_inter_threads(1)
            .map_err(|e| err(ort::Error::<()>::from(e)))?
            .commit_from_file(&files.model)
            .map_err(|e| EmbedError(format!("cannot load {}: {e}", files.model.display())))?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        if !inputs.iter().any(|n| n == "input_ids") || !inputs.iter().any(|n| n == "attention_mask")
        {
            return Err(EmbedError(format!(
                "model inputs are {inputs:?}; expected input_ids and attention_mask"
            )));
        }
        let token_type_ids = inputs.iter().any(|n| n == "token_type_ids");
        let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| EmbedError(format!("cannot load {}: {e}", files.tokenizer.display())))?;
        // The shipped tokenizer.json pads and truncates to 128; the model takes 256.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..Default::default()
            }))
            .map_err(err)?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: 0,
            pad_type_id: 0,
            pad_token: "[PAD]".into(),
            ..Default::default()
        }));
        Ok(Self {
            model: Arc::new(Mutex::new(Model {
                session,
                tokenizer,
                token_type_ids,
            })),
            model_id: format!("local:{}", files.model_name),
        })
    }

    /// Token count of a text as the model sees it (for token-bounded chunking and budgets).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let model = self
            .model
            .lock()
            .map_err(|_| EmbedError("model lock poisoned".into()))?;
        let enc = model.tokenizer.encode(text, false).map_err(err)?;
        Ok(enc.len())
    }
}

impl Model {
    fn embed_batch(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(err)?;
        let (b, s) = (enc.len(), enc[0].len());
        let mut ids = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&x| i64::from(x)));
            mask.extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
        }
        let shape = [b, s];
        let mask_f: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
        let ids_t = Tensor::from_array((shape, ids)).map_err(err)?;
        let mask_t = Tensor::from_array((shape, mask)).map_err(err)?;
        let outputs = if self.token_type_ids {
            let tt = Tensor::from_array((shape, vec![0i64; b * s])).map_err(err)?;
            self.session
                .run(ort::inputs! { "input_ids" => ids_t, "attention_mask" => mask_t, "token_type_ids" => tt })
                .map_err(err)?
        } else {
            self.session
                .run(ort::inputs! { "input_ids" => ids_t, "attention_mask" => mask_t })
                .map_err(err)?
        };
        let (out_shape, hidden) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        let expected = [b as i64, s as i64, DIMS as i64];
        if out_shape.len() != 3 || out_shape[..] != expected[..] {
            return Err(EmbedError(format!(
                "unexpected output shape {out_shape:?}, wanted {expected:?}"
            )));
        }
        let mut result = Vec::with_capacity(b);
        for i in 0..b {
            let mut v = vec![0f32; DIMS];
            let mut count = 0f32;
            for t in 0..s {
                let m = mask_f[i * s + t];
                if m == 0.0 {
                    continue;
                }
                count += m;
                let row = &hidden[(i * s + t) * DIMS..(i * s + t + 1) * DIMS];
                for (acc, x) in v.iter_mut().zip(row) {
                    *acc += x * m;
                }
            }
            let count = count.max(1e-9);
            v.iter_mut().for_each(|x| *x /= count);
            crate::normalize(&mut v);
            result.push(v);
        }
        Ok(result)
    }

    /// Sorted by length so each batch pads little (as sentence-transformers does); input order kept.
    fn embed_many(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for idx in order.chunks(BATCH) {
            let batch: Vec<&str> = idx.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, v) in idx.iter().zip(self.embed_batch(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> usize {
        DIMS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        // CPU-bound: off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut model = model
                .lock()
                .map_err(|_| EmbedError("model lock poisoned".into()))?;
            model.embed_many(&texts)
        })
        .await
        .map_err(err)?
    }
}
