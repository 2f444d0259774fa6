//! Embedding providers behind `concierge_knowledge::embed::Embedder`.
//!
//! Architecture invariant: the only crate that knows the embedding wire formats and model files;
//! the knowledge engine sees vectors.

pub mod bert;
pub mod cross;
pub mod local;
pub mod models;
pub mod openai;

pub use cross::BertCrossEncoder;
pub use local::LocalEmbedder;
pub use openai::OpenAiEmbedder;

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}
