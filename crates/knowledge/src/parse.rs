//! Source files to documents: Markdown (with front matter), HTML, plain text and PDF.

use std::path::Path;

/// A parsed source file, its body normalized to Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    pub title: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Principals allowed to read it (front matter `acl`); empty means public.
    pub acl: Vec<String>,
    pub markdown: String,
}

/// The file kinds the directory source reads.
pub fn is_supported(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("md" | "markdown" | "html" | "htm" | "txt" | "pdf")
    )
}

/// Whether the file is binary (read as bytes, see [`parse_pdf`]).
pub fn is_pdf(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

/// A PDF's text (pdf-extract), one `## Page N` section per page so that citations say where a
/// passage is; lines of a paragraph are joined, blank lines separate paragraphs. The title is
/// the document's first line. PDFs without a text layer (scans) are an error, as is a file
/// pdf-extract cannot read (its panics on malformed files are caught).
pub fn parse_pdf(bytes: &[u8], fallback_title: &str) -> Result<ParsedDocument, String> {
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| "the PDF could not be read (malformed file)".to_string())?
        .map_err(|e| format!("the PDF could not be read: {e}"))?;
    let mut markdown = String::new();
    let mut title = None;
    for (i, page) in pages.iter().enumerate() {
        let paragraphs: Vec<String> = page
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        if paragraphs.is_empty() {
            continue;
        }
        if title.is_none() {
            title = page
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string);
        }
        markdown.push_str(&format!(
            "## Page {}\n\n{}\n\n",
            i + 1,
            paragraphs.join("\n\n")
        ));
    }
    if markdown.is_empty() {
        return Err("the PDF has no text layer (a scan?)".into());
    }
    Ok(ParsedDocument {
        title: title.unwrap_or_else(|| humanize(fallback_title)),
        url: None,
        tags: Vec::new(),
        acl: Vec::new(),
        markdown,
    })
}

pub fn parse_file(path: &Path, content: &str) -> Result<ParsedDocument, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("untitled");
    match ext.as_str() {
        "md" | "markdown" => parse_markdown(content, stem),
        "html" | "htm" => parse_html(content, stem),
        "txt" => Ok(parse_text(content, stem)),
        other => Err(format!("unsupported file type {other:?}")),
    }
}

/// Markdown with optional front matter between `---` lines (`key: value`) or `+++` lines
/// (`key = "value"`). Keys: `title`, `url`, `tags` and `acl` (comma-separated or `[a, b]`).
pub fn parse_markdown(content: &str, fallback_title: &str) -> Result<ParsedDocument, String> {
    let content = content.trim_start_matches('\u{feff}');
    let (front, body) = split_front_matter(content)?;
    let mut doc = ParsedDocument {
        title: String::new(),
        url: None,
        tags: Vec::new(),
        acl: Vec::new(),
        markdown: body.to_string(),
    };
    for (key, value) in front {
        match key.as_str() {
            "title" => doc.title = value,
            "url" => doc.url = Some(value).filter(|v| !v.is_empty()),
            "tags" => doc.tags = parse_tags(&value),
            "acl" => doc.acl = parse_tags(&value),
            _ => {}
        }
    }
    if doc.title.is_empty() {
        doc.title = first_heading(body).unwrap_or_else(|| humanize(fallback_title));
    }
    Ok(doc)
}

/// Front matter pairs and the body after them.
type FrontMatter<'a> = (Vec<(String, String)>, &'a str);

fn split_front_matter(content: &str) -> Result<FrontMatter<'_>, String> {
    let (fence, sep) = if content.starts_with("---\n") || content.starts_with("---\r\n") {
        ("---", ':')
    } else if content.starts_with("+++\n") || content.starts_with("+++\r\n") {
        ("+++", '=')
    } else {
        return Ok((Vec::new(), content));
    };
    let after_open = &content[content.find('\n').map_or(content.len(), |i| i + 1)..];
    let mut offset = 0;
    let mut pairs = Vec::new();
    for line in after_open.split_inclusive('\n') {
        offset += line.len();
        let trimmed = line.trim();
        if trimmed == fence {
            return Ok((pairs, &after_open[offset..]));
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((k, v)) = trimmed.split_once(sep) else {
            return Err(format!(
                "front matter line {trimmed:?} is not `key{sep} value`"
            ));
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        pairs.push((k.trim().to_ascii_lowercase(), v));
    }
    Err(format!("front matter opened with {fence} is never closed"))
}

fn parse_tags(value: &str) -> Vec<String> {
    value
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|t| t.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn first_heading(markdown: &str) -> Option<String> {
    markdown
        .lines()
        .find_map(|l| l.trim().strip_prefix("# ").map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())
}

fn humanize(stem: &str) -> String {
    let s = stem.replace(['-', '_'], " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// HTML: title from `<title>` (or the first `<h1>`), `url`/`tags` from `<meta name=...>`, body
/// converted to Markdown so the same chunker applies.
pub fn parse_html(content: &str, fallback_title: &str) -> Result<ParsedDocument, String> {
    let title = tag_text(content, "title")
        .or_else(|| tag_text(content, "h1"))
        .unwrap_or_else(|| humanize(fallback_title));
    let url = meta_content(content, "url");
    let acl = meta_content(content, "acl")
        .map(|t| parse_tags(&t))
        .unwrap_or_default();
    let tags = meta_content(content, "tags")
        .map(|t| parse_tags(&t))
        .unwrap_or_default();
    let body = match find_ci(content, "<body") {
        Some(start) => &content[start..],
        None => content,
    };
    let markdown = htmd::convert(body).map_err(|e| format!("cannot convert HTML: {e}"))?;
    Ok(ParsedDocument {
        title,
        url,
        tags,
        acl,
        markdown,
    })
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase())
}

fn tag_text(html: &str, tag: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find(&format!("<{tag}"))?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find(&format!("</{tag}"))?;
    let inner = htmd::convert(&html[start..end]).ok()?;
    let text = inner.trim().trim_start_matches('#').trim().to_string();
    Some(text).filter(|t| !t.is_empty())
}

fn meta_content(html: &str, name: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("<meta") {
        let start = from + pos;
        let end = start + lower[start..].find('>')?;
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        if tag_lower.contains(&format!("name=\"{name}\""))
            || tag_lower.contains(&format!("name='{name}'"))
        {
            let idx = tag_lower.find("content=")?;
            let rest = &tag[idx + 8..];
            let quote = rest.chars().next()?;
            let value = rest[1..].split(quote).next()?;
            return Some(value.trim().to_string());
        }
        from = end;
    }
    None
}

/// Plain text: a first line followed by a blank line is the title.
pub fn parse_text(content: &str, fallback_title: &str) -> ParsedDocument {
    let content = content.trim_start_matches('\u{feff}');
    let mut lines = content.lines();
    let first = lines.next().unwrap_or("").trim();
    let second = lines.next();
    let (title, body) =
        if !first.is_empty() && first.len() <= 120 && second.is_some_and(|l| l.trim().is_empty()) {
            let body_start = content.find('\n').map_or(content.len(), |i| i + 1);
            (
                first.to_string(),
                content[body_start..].trim_start().to_string(),
            )
        } else {
            (humanize(fallback_title), content.to_string())
        };
    ParsedDocument {
        title,
        url: None,
        tags: Vec::new(),
        acl: Vec::new(),
        markdown: body,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn markdown_front_matter_is_read() {
        let d = parse_markdown(
            "---\ntitle: Reset your password\nurl: https://x/reset\ntags: account, security\n---\n## Steps\nDo it.\n",
            "reset",
        )
        .expect("parse");
        assert_eq!(d.title, "Reset your password");
        assert_eq!(d.url.as_deref(), Some("https://x/reset"));
        assert_eq!(d.tags, vec!["account", "security"]);
        assert_eq!(d.markdown, "## Steps\nDo it.\n");
    }

    #[test]
    fn markdown_without_front_matter_uses_heading_or_file_name() {
        assert_eq!(
            parse_markdown("# Hello world\ntext", "x").expect("p").title,
            "Hello world"
        );
        assert_eq!(
            parse_markdown("text", "shipping-times").expect("p").title,
            "Shipping times"
        );
        assert!(
            parse_markdown("---\ntitle: x\n", "x").is_err(),
            "unclosed front matter is an error"
        );
    }

    #[test]
    fn html_title_meta_and_body() {
        let html = r#"<html><head><title>Gift cards</title><meta name="url" content="https://x/gift">
            <meta name="tags" content="billing, gifts"></head><body><h1>Gift cards</h1><p>They never expire.</p>
            <ul><li>One</li><li>Two</li></ul></body></html>"#;
        let d = parse_html(html, "g").expect("parse");
        assert_eq!(d.title, "Gift cards");
        assert_eq!(d.url.as_deref(), Some("https://x/gift"));
        assert_eq!(d.tags, vec!["billing", "gifts"]);
        assert!(d.markdown.contains("They never expire."), "{}", d.markdown);
        assert!(d.markdown.contains("One"), "{}", d.markdown);
    }

    /// A minimal one-font PDF with one text line per page, its xref offsets computed.
    pub(crate) fn tiny_pdf(pages: &[&str]) -> Vec<u8> {
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".into(),
            String::new(), // pages, filled below
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        ];
        let mut kids = Vec::new();
        for text in pages {
            let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
            objects.push(format!(
                "<< /Length {} >>\nstream\n{stream}\nendstream",
                stream.len()
            ));
            let content = objects.len();
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R \
                 /Resources << /Font << /F1 3 0 R >> >> >>"
            ));
            kids.push(format!("{} 0 R", objects.len()));
        }
        objects[1] = format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        );
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for o in offsets {
            out.extend(format!("{o:010} 00000 n \n").bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        out
    }

    #[test]
    fn pdf_pages_become_sections() {
        let pdf = tiny_pdf(&["Warranty terms", "Claims are answered within ten days."]);
        let doc = parse_pdf(&pdf, "warranty").expect("parse");
        assert_eq!(doc.title, "Warranty terms");
        assert!(
            doc.markdown.contains("## Page 1\n\nWarranty terms"),
            "{}",
            doc.markdown
        );
        assert!(
            doc.markdown
                .contains("## Page 2\n\nClaims are answered within ten days."),
            "{}",
            doc.markdown
        );
        let err = parse_pdf(b"%PDF-1.4 not really", "x").unwrap_err();
        assert!(err.contains("could not be read"), "{err}");
    }

    #[test]
    fn text_first_line_is_title() {
        let d = parse_text("Support hours\n\nWe are open daily.\n", "x");
        assert_eq!(d.title, "Support hours");
        assert_eq!(d.markdown, "We are open daily.\n");
    }
}
