//! Structure-aware chunking: Markdown is split along headings into sections, sections into
//! blocks (paragraphs, lists, tables, code), and blocks are packed into chunks of bounded size.
//! Every chunk carries the heading path above it.

use crate::text::sentences;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Upper bound of a chunk's text, in characters (about 250 tokens of English).
pub const MAX_CHUNK_CHARS: usize = 1200;

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

/// Splits a Markdown body into chunks. Blocks under the same heading path are packed together up
/// to [`MAX_CHUNK_CHARS`]; a longer block is split at sentence boundaries.
pub fn chunk_markdown(markdown: &str) -> Vec<ChunkDraft> {
    let mut out: Vec<ChunkDraft> = Vec::new();
    let mut current: Option<ChunkDraft> = None;
    for block in blocks(markdown) {
        for piece in split_long(&block.text) {
            match current.as_mut() {
                Some(c)
                    if c.heading_path == block.heading_path
                        && c.text.len() + 2 + piece.len() <= MAX_CHUNK_CHARS =>
                {
                    c.text.push_str("\n\n");
                    c.text.push_str(&piece);
                }
                _ => {
                    if let Some(done) = current.take() {
                        out.push(done);
                    }
                    current = Some(ChunkDraft {
                        heading_path: block.heading_path.clone(),
                        text: piece,
                    });
                }
            }
        }
    }
    out.extend(current);
    out
}

fn split_long(text: &str) -> Vec<String> {
    if text.len() <= MAX_CHUNK_CHARS {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let parts: Vec<String> = if text.contains('\n') {
        text.lines().map(str::to_string).collect()
    } else {
        sentences(text)
    };
    let sep = if text.contains('\n') { "\n" } else { " " };
    for part in parts {
        if !current.is_empty() && current.len() + 1 + part.len() > MAX_CHUNK_CHARS {
            pieces.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str(sep);
        }
        // A single sentence longer than the bound is kept whole rather than cut mid-sentence.
        current.push_str(&part);
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
    fn long_sections_are_split_within_the_bound() {
        let sentence = "This sentence is about forty-five characters. ";
        let md = format!(
            "## Big\n{}\n\n{}\n",
            sentence.repeat(40),
            sentence.repeat(40)
        );
        let chunks = chunk_markdown(&md);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for c in &chunks {
            assert!(c.text.len() <= MAX_CHUNK_CHARS, "{}", c.text.len());
            assert_eq!(c.heading_path, vec!["Big"]);
        }
        let total: usize = chunks
            .iter()
            .map(|c| c.text.matches("forty-five").count())
            .sum();
        assert_eq!(total, 80, "no sentence lost");
    }

    #[test]
    fn nested_lists_are_flattened_in_order() {
        let chunks = chunk_markdown("- a\n  - b\n- c\n");
        assert_eq!(chunks[0].text, "- a\n- b\n- c");
    }
}
