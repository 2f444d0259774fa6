//! Knowledge sources behind one interface, so connectors (Confluence, Jira, ...) plug in next to
//! the directory and JSONL sources: a source lists what it holds now; the sync engine works out
//! what changed.

use crate::parse::{ParsedDocument, is_pdf, is_supported, parse_file, parse_pdf};
use crate::{KnowledgeError, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use concierge_core::PUBLIC;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One document as a source delivers it; the body is Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDocument {
    /// Stable id within the source (relative path, corpus id, page id).
    pub external_id: String,
    pub title: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Principals allowed to read it; `["public"]` when the source says nothing.
    pub acl: Vec<String>,
    pub markdown: String,
    /// The source's own version (page version, revision), when it has one.
    pub version: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a source holds now. Items that failed to load are listed with the reason; the sync keeps
/// their previous version instead of deleting them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub documents: Vec<SourceDocument>,
    /// `(external id, reason)`.
    pub failed: Vec<(String, String)>,
}

#[async_trait]
pub trait KnowledgeSource: Send + Sync {
    /// Stable id of the source (`dir:/abs/path`, `jsonl:/abs/file`, `confluence:SPACE`).
    fn id(&self) -> String;
    /// Everything the source holds now.
    async fn snapshot(&self) -> Result<Snapshot>;
}

fn public() -> Vec<String> {
    vec![PUBLIC.to_string()]
}

/// A directory of Markdown (front matter `title`, `url`, `tags`, `acl`), HTML and text files,
/// read recursively; hidden files and folders are skipped.
pub struct DirectorySource {
    root: PathBuf,
}

impl DirectorySource {
    pub fn new(root: &Path) -> Result<Self> {
        let root = root.canonicalize().map_err(|source| KnowledgeError::Io {
            path: root.display().to_string(),
            source,
        })?;
        if !root.is_dir() {
            return Err(KnowledgeError::Parse {
                path: root.display().to_string(),
                message: "not a directory".into(),
            });
        }
        Ok(Self { root })
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| KnowledgeError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| KnowledgeError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if is_supported(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn from_parsed(
    external_id: String,
    parsed: ParsedDocument,
    updated_at: Option<DateTime<Utc>>,
) -> SourceDocument {
    SourceDocument {
        external_id,
        title: parsed.title,
        url: parsed.url,
        tags: parsed.tags,
        acl: if parsed.acl.is_empty() {
            public()
        } else {
            parsed.acl
        },
        markdown: parsed.markdown,
        version: None,
        updated_at,
    }
}

#[async_trait]
impl KnowledgeSource for DirectorySource {
    fn id(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let mut files = Vec::new();
        collect_files(&self.root, &mut files)?;
        files.sort();
        let mut snapshot = Snapshot::default();
        for path in files {
            let rel = path
                .strip_prefix(&self.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from);
            if is_pdf(&path) {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("untitled");
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| parse_pdf(&b, stem))
                {
                    Ok(doc) => snapshot.documents.push(from_parsed(rel, doc, modified)),
                    Err(message) => snapshot.failed.push((rel, message)),
                }
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(content) => match parse_file(&path, &content) {
                    Ok(doc) => snapshot.documents.push(from_parsed(rel, doc, modified)),
                    Err(message) => snapshot.failed.push((rel, message)),
                },
                Err(e) => snapshot.failed.push((rel, e.to_string())),
            }
        }
        Ok(snapshot)
    }
}

/// A JSONL corpus: one `{"id", "title", "content", "url"?, "acl"?, "tags"?, "version"?}` per line;
/// `content` is Markdown or plain text.
pub struct JsonlSource {
    path: PathBuf,
}

impl JsonlSource {
    pub fn new(path: &Path) -> Result<Self> {
        let path = path.canonicalize().map_err(|source| KnowledgeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self { path })
    }
}

#[derive(Deserialize)]
struct JsonlRow {
    id: serde_json::Value,
    #[serde(default)]
    title: String,
    content: String,
    url: Option<String>,
    acl: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
    version: Option<serde_json::Value>,
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl KnowledgeSource for JsonlSource {
    fn id(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| KnowledgeError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        let mut snapshot = Snapshot::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JsonlRow>(line) {
                Ok(row) => {
                    let id = scalar(&row.id);
                    let title = if row.title.trim().is_empty() {
                        id.clone()
                    } else {
                        row.title
                    };
                    let acl = row.acl.filter(|a| !a.is_empty()).unwrap_or_else(public);
                    snapshot.documents.push(SourceDocument {
                        external_id: id,
                        title,
                        url: row.url,
                        tags: row.tags,
                        acl,
                        markdown: row.content,
                        version: row.version.as_ref().map(scalar),
                        updated_at: None,
                    });
                }
                Err(e) => snapshot
                    .failed
                    .push((format!("line {}", n + 1), e.to_string())),
            }
        }
        Ok(snapshot)
    }
}

/// The source for a path: a `.jsonl` file or a directory.
pub fn open_path(path: &Path) -> Result<Box<dyn KnowledgeSource>> {
    if path.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
        Ok(Box::new(JsonlSource::new(path)?))
    } else {
        Ok(Box::new(DirectorySource::new(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_reads_markdown_and_pdf_and_reports_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "# Returns\n\nThirty days.\n").unwrap();
        std::fs::write(
            dir.path().join("manual.pdf"),
            crate::parse::tests::tiny_pdf(&[
                "Thermostat manual",
                "Hold the button for five seconds.",
            ]),
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.pdf"), b"%PDF-1.7 garbage").unwrap();
        let snapshot = DirectorySource::new(dir.path())
            .unwrap()
            .snapshot()
            .await
            .unwrap();
        let titles: Vec<&str> = snapshot
            .documents
            .iter()
            .map(|d| d.title.as_str())
            .collect();
        assert_eq!(titles, vec!["Returns", "Thermostat manual"]);
        assert!(snapshot.documents[1].markdown.contains("five seconds"));
        assert_eq!(snapshot.failed.len(), 1);
        assert_eq!(snapshot.failed[0].0, "broken.pdf");
    }
}
