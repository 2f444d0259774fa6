//! Knowledge-base documents and chunks as the store keeps them.

use crate::domain::{DocumentId, WorkspaceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A source document (one file of a directory source, one page of a wiki...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub workspace_id: WorkspaceId,
    /// Which source it came from (`dir:/path/to/kb`).
    pub source: String,
    /// The document's id within its source (relative path, page id).
    pub external_id: String,
    pub title: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Hex SHA-256 of the normalized content; a change triggers re-chunking and re-indexing.
    pub content_hash: String,
    pub updated_at: DateTime<Utc>,
}

/// A retrievable passage of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// `<document id>:<ordinal>`; stable while the document does not change.
    pub id: String,
    pub document_id: DocumentId,
    pub ordinal: u32,
    /// Headings above the passage, outermost first.
    pub heading_path: Vec<String>,
    pub text: String,
}

impl Chunk {
    pub fn id_for(document_id: DocumentId, ordinal: u32) -> String {
        format!("{document_id}:{ordinal}")
    }
}
