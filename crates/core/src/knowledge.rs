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
    /// The source's own version of the document (page version, revision), when it has one.
    pub source_version: Option<String>,
    /// Principals allowed to read it (`public`, `user:<id>`, `group:<name>`); see [`PUBLIC`].
    pub acl: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// The principal every asker holds: documents readable by `public` are readable by anyone.
pub const PUBLIC: &str = "public";

/// Who is asking, for permission-aware retrieval: a document is visible when its access list
/// shares at least one principal with the asker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals(Vec<String>);

impl Principals {
    /// Only public documents.
    pub fn public() -> Self {
        Self(vec![PUBLIC.to_string()])
    }

    /// `public` plus the given principals (deduplicated, empty ones dropped).
    pub fn with(extra: impl IntoIterator<Item = String>) -> Self {
        let mut all = vec![PUBLIC.to_string()];
        for p in extra {
            let p = p.trim().to_string();
            if !p.is_empty() && !all.contains(&p) {
                all.push(p);
            }
        }
        Self(all)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn can_read(&self, acl: &[String]) -> bool {
        acl.iter().any(|a| self.0.contains(a))
    }
}

/// A past question with the documents that answered it: an imported past ticket, or a question
/// answered with articles. The retrieval pipeline lets similar past questions vote for their
/// documents (`concierge_knowledge::resolved`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedQuestion {
    pub workspace_id: WorkspaceId,
    /// Unique within the workspace (a ticket key, a query id); writing the same key replaces.
    pub key: String,
    pub question: String,
    /// The answering documents' ids within their source ([`Document::external_id`]).
    pub documents: Vec<String>,
    /// Where it came from (`import`, `api`, `conversation`).
    pub origin: String,
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
