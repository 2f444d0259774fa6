//! The embedding boundary: anything that turns texts into unit-length vectors. The local ONNX
//! model and OpenAI-compatible `/v1/embeddings` servers implement it in `concierge-embed`.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[error("embedding failed: {0}")]
pub struct EmbedError(pub String);

#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model and its settings; cached vectors are keyed by it, so a change of
    /// model re-embeds everything.
    fn model_id(&self) -> &str;
    fn dims(&self) -> usize;
    /// One L2-normalized vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The text embedded for a chunk: its title and heading path give the passage its context.
pub fn chunk_text_for_embedding(title: &str, heading_path: &[String], text: &str) -> String {
    let mut out = String::with_capacity(title.len() + text.len() + 32);
    out.push_str(title);
    for h in heading_path {
        if h != title {
            out.push_str(" > ");
            out.push_str(h);
        }
    }
    out.push('\n');
    out.push_str(text);
    out
}

/// Hex SHA-256 of an embedded text: the cache key next to the model id.
pub fn text_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
