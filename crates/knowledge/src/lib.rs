//! The knowledge engine: turns source files into chunks (write path), searches them with BM25
//! (read path), and composes grounded, cited, extractive answers.
//!
//! Architecture invariant: no HTTP and no SQL here. Documents are persisted through the core
//! `Store` trait; the tantivy index is derived from the store and can be rebuilt from it.

pub mod answer;
pub mod base;
pub mod chunk;
pub mod dense;
pub mod embed;
pub mod grounding;
pub mod index;
pub mod ingest;
pub mod parse;
pub mod pipeline;
pub mod rerank;
pub mod resolved;
pub mod source;
pub mod text;

pub use answer::{Answer, AnswerConfig, compose_answer};
pub use base::KnowledgeBase;
pub use index::{Hit, KnowledgeIndex};
pub use ingest::{IngestReport, sync_source};
pub use source::{DirectorySource, JsonlSource, KnowledgeSource, SourceDocument};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("cannot open index directory: {0}")]
    Directory(String),
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] concierge_core::StoreError),
    #[error("embedding failed: {0}")]
    Embedding(String),
}

pub type Result<T> = std::result::Result<T, KnowledgeError>;
