//! Structure-aware chunking: Markdown is split along headings into sections, sections into
//! blocks (paragraphs, lists, tables, code), and blocks are packed into chunks of a bounded
//! number of tokens. When a section needs more than one chunk, each chunk after the first
//! repeats the last sentences of the previous one (the overlap), so a fact that straddles the
//! cut is whole in one of them. Every chunk carries the heading path above it.

use crate::text::sentences;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Bounds of a chunk's text, in (estimated) model tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// At most this many tokens of text per chunk (a single sentence longer than that is kept
    /// whole rather than cut mid-sentence). The embedding model reads 256 tokens, and the
    /// title and heading path come first.
    pub max_tokens: usize,
    /// Tokens of trailing sentences repeated at the start of the next chunk of a section.
    pub overlap_tokens: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_tokens: 220,
            overlap_tokens: 40,
        }
    }
}

/// An estimate of the WordPiece tokens of `text` (the all-MiniLM-L6-v2 / BERT vocabulary):
/// one per punctuation mark, and per run of letters or digits one per started eight characters
/// (common English words are one token, long or rare ones split). It does not depend on which
/// embedding model is configured, so chunk boundaries (and chunk ids) stay put when the model
/// changes. Its agreement with the real tokenizer is checked on the demo help center by the
/// embedding crate's model tests.
pub fn estimate_tokens(text: &str) -> usize {
    let mut tokens = 0;
    let mut run = 0usize;
    for c in text.chars() {
        if c.is_alphanumeric() {
            run += 1;
            continue;
        }
        tokens += run.div_ceil(8);
        run = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens + run.div_ceil(8)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDraft {
    pub heading_path: Vec<String>,
    /// Blocks separated by blank lines; list items and table rows one per line.
    pub text: String,
}

#[derive(Debug)]
struct Block {
    heading_path: Vec<String>,
    text: String,
}

fn level_index(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 0,
        HeadingLevel::H2 => 1,
        HeadingLevel::H3 => 2,
        HeadingLevel::H4 => 3,
        HeadingLevel::H5 => 4,
        HeadingLevel::H6 => 5,
    }
}

/// Parses Markdown into blocks with their heading paths.
fn blocks(markdown: &str) -> Vec<Block> {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut inline = String::new();
    let mut heading: Option<usize> = None;
    // List state: a stack of next item numbers (None for bullets).
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut list_lines: Vec<String> = Vec::new();
    let mut table_rows: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut code: Option<String> = None;
    let current_path =
        |path: &Vec<(usize, String)>| path.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();

    for event in parser {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some(level_index(level));
                inline.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(level) = heading.take() {
                    path.retain(|(l, _)| *l < level);
                    let title = clean(&inline);
                    if !title.is_empty() {
                        path.push((level, title));
                    }
                }
                inline.clear();
            }
            Event::Start(Tag::Paragraph) if lists.is_empty() => inline.clear(),
            Event::End(TagEnd::Paragraph) => {
                if lists.is_empty() {
                    let text = clean(&inline);
                    if !text.is_empty() {
                        out.push(Block {
                            heading_path: current_path(&path),
                            text,
                        });
                    }
                    inline.clear();
                } else {
                    inline.push(' ');
                }
            }
            Event::Start(Tag::List(start)) => {
                if !lists.is_empty() {
                    flush_item(&mut inline, &mut lists, &mut list_lines);
                }
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() && !list_lines.is_empty() {
                    out.push(Block {
                        heading_path: current_path(&path),
                        text: list_lines.join("\n"),
                    });
                    list_lines.clear();
                }
            }
            Event::Start(Tag::Item) => inline.clear(),
            Event::End(TagEnd::Item) => flush_item(&mut inline, &mut lists, &mut list_lines),
            Event::Start(Tag::Table(_)) => table_rows.clear(),
            Event::End(TagEnd::TableCell) => {
                row.push(clean(&inline));
                inline.clear();
            }
            Event::End(TagEnd::TableHead) | Event::End(TagEnd::TableRow) => {
                table_rows.push(std::mem::take(&mut row));
            }
            Event::End(TagEnd::Table) => {
                let text = table_text(&table_rows);
                if !text.is_empty() {
                    out.push(Block {
                        heading_path: current_path(&path),
                        text,
                    });
                }
                table_rows.clear();
            }
            Event::Start(Tag::CodeBlock(_)) => code = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => {
                if let Some(c) = code.take() {
                    let c = c.trim_end().to_string();
                    if !c.is_empty() {
                        out.push(Block {
                            heading_path: current_path(&path),
                            text: c,
                        });
                    }
                }
            }
            Event::Text(t) => match code.as_mut() {
                Some(c) => c.push_str(&t),
                None => inline.push_str(&t),
            },
            Event::Code(t) => inline.push_str(&t),
            Event::SoftBreak | Event::HardBreak => inline.push(' '),
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }
    // Text outside any block (e.g. bare inline HTML leftovers) is dropped on purpose.
    out
}

fn flush_item(inline: &mut String, lists: &mut [Option<u64>], lines: &mut Vec<String>) {
    let text = clean(inline);
    inline.clear();
    if text.is_empty() {
        return;
    }
    let marker = match lists.last_mut() {
        Some(Some(n)) => {
            let m = format!("{n}.");
            *n += 1;
            m
        }
        _ => "-".to_string(),
    };
    lines.push(format!("{marker} {text}"));
}

fn table_text(rows: &[Vec<String>]) -> String {
    let Some((header, body)) = rows.split_first() else {
        return String::new();
    };
    body.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, cell)| match header.get(i) {
                    Some(h) if !h.is_empty() => format!("{h}: {cell}"),
                    _ => cell.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .map(|line| format!("- {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a Markdown body into chunks with the default [`ChunkLimits`].
pub fn chunk_markdown(markdown: &str) -> Vec<ChunkDraft> {
    chunk_markdown_with(markdown, ChunkLimits::default())
}

/// Splits a Markdown body into chunks. Blocks under the same heading path are packed together up
/// to `limits.max_tokens`; a longer block is split at line or sentence boundaries; a chunk that
/// continues a section starts with the overlap.
pub fn chunk_markdown_with(markdown: &str, limits: ChunkLimits) -> Vec<ChunkDraft> {
    let mut out: Vec<ChunkDraft> = Vec::new();
    let mut current: Option<(ChunkDraft, usize)> = None;
    for block in blocks(markdown) {
        // Pieces of a long block leave room for the overlap in front of them.
        let piece_bound = limits
            .max_tokens
            .saturating_sub(limits.overlap_tokens)
            .max(limits.max_tokens / 2);
        for piece in split_long(&block.text, piece_bound) {
            let tokens = estimate_tokens(&piece);
            match current.as_mut() {
                Some((c, used))
                    if c.heading_path == block.heading_path
                        && *used + tokens <= limits.max_tokens =>
                {
                    c.text.push_str("\n\n");
                    c.text.push_str(&piece);
                    *used += tokens;
                }
                _ => {
                    let mut text = String::new();
                    if let Some((done, _)) = current.take() {
                        if done.heading_path == block.heading_path {
                            text = overlap(&done.text, limits.overlap_tokens);
                        }
                        out.push(done);
                    }
                    // The overlap never pushes a chunk over the bound.
                    if estimate_tokens(&text) + tokens > limits.max_tokens {
                        text.clear();
                    }
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&piece);
                    let used = estimate_tokens(&text);
                    current = Some((
                        ChunkDraft {
                            heading_path: block.heading_path.clone(),
                            text,
                        },
                        used,
                    ));
                }
            }
        }
    }
    out.extend(current.map(|(c, _)| c));
    out
}

/// The last whole sentences (or list lines) of `text` within `budget` tokens.
fn overlap(text: &str, budget: usize) -> String {
    if budget == 0 {
        return String::new();
    }
    let last_block = text.rsplit("\n\n").next().unwrap_or(text);
    let (parts, sep): (Vec<String>, &str) = if last_block.contains('\n') {
        (last_block.lines().map(str::to_string).collect(), "\n")
    } else {
        (sentences(last_block), " ")
    };
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for part in parts.into_iter().rev() {
        let t = estimate_tokens(&part);
        if used + t > budget {
            break;
        }
        used += t;
        kept.push(part);
    }
    kept.reverse();
    kept.join(sep)
}

fn split_long(text: &str, max_tokens: usize) -> Vec<String> {
    if estimate_tokens(text) <= max_tokens {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    let parts: Vec<String> = if text.contains('\n') {
        text.lines().map(str::to_string).collect()
    } else {
        sentences(text)
    };
    let sep = if text.contains('\n') { "\n" } else { " " };
    for part in parts {
        let t = estimate_tokens(&part);
        if !current.is_empty() && used + t > max_tokens {
            pieces.push(std::mem::take(&mut current));
            used = 0;
        }
        if !current.is_empty() {
            current.push_str(sep);
        }
        // A single sentence longer than the bound is kept whole rather than cut mid-sentence.
        current.push_str(&part);
        used += t;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_and_tables_become_chunks_with_paths() {
        let md = "# Returns\nIntro text.\n\n## How to return\nFollow these steps:\n\n1. Open **Orders**.\n2. Pick the item.\n\n\
                  ## Fees\n| Item | Fee |\n|---|---|\n| Opened | 15% |\n\n```\ncode here\n```\n";
        let chunks = chunk_markdown(md);
        assert_eq!(chunks.len(), 3, "{chunks:#?}");
        assert_eq!(chunks[0].heading_path, vec!["Returns"]);
        assert_eq!(chunks[0].text, "Intro text.");
        assert_eq!(chunks[1].heading_path, vec!["Returns", "How to return"]);
        assert_eq!(
            chunks[1].text,
            "Follow these steps:\n\n1. Open Orders.\n2. Pick the item."
        );
        assert_eq!(chunks[2].heading_path, vec!["Returns", "Fees"]);
        assert_eq!(chunks[2].text, "- Item: Opened; Fee: 15%\n\ncode here");
    }

    #[test]
    fn long_sections_are_split_within_the_bound_with_overlap() {
        let md = format!(
            "## Big\n{}\n\n{}\n",
            (0..40)
                .map(|i| format!("Sentence number {i} is about the fees. "))
                .collect::<String>(),
            (40..80)
                .map(|i| format!("Sentence number {i} is about the fees. "))
                .collect::<String>(),
        );
        let limits = ChunkLimits::default();
        let chunks = chunk_markdown(&md);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for c in &chunks {
            assert!(estimate_tokens(&c.text) <= limits.max_tokens, "{}", c.text);
            assert_eq!(c.heading_path, vec!["Big"]);
        }
        // Every sentence is somewhere, in order; each later chunk starts with the end of the
        // previous one, within the overlap budget.
        for i in 0..80 {
            let needle = format!("number {i} is");
            assert!(chunks.iter().any(|c| c.text.contains(&needle)), "{i} lost");
        }
        for pair in chunks.windows(2) {
            let repeated = pair[1].text.split("\n\n").next().unwrap();
            assert!(pair[0].text.ends_with(repeated), "no overlap: {pair:#?}");
            assert!(
                estimate_tokens(repeated) <= limits.overlap_tokens,
                "{repeated}"
            );
        }
        let none = chunk_markdown_with(
            &md,
            ChunkLimits {
                overlap_tokens: 0,
                ..limits
            },
        );
        let total: usize = none
            .iter()
            .map(|c| c.text.matches("about the fees").count())
            .sum();
        assert_eq!(total, 80, "without overlap every sentence appears once");
    }

    #[test]
    fn token_estimate_tracks_wordpiece_on_english() {
        // "The refund arrives within 5 business days." is 8 WordPiece tokens.
        assert_eq!(
            estimate_tokens("The refund arrives within 5 business days."),
            8
        );
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a, b"), 3);
    }

    #[test]
    fn nested_lists_are_flattened_in_order() {
        let chunks = chunk_markdown("- a\n  - b\n- c\n");
        assert_eq!(chunks[0].text, "- a\n- b\n- c");
    }
}
