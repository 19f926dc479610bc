//! Markdown to sanitised HTML (article pages) and to plain text (snippets, passages).

use std::collections::HashMap;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

pub(crate) fn markdown_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Gives each heading a stable, unique anchor in document order. The renderer and the
/// passage splitter both use it, so a passage's anchor links to its heading on the page.
#[derive(Default)]
pub(crate) struct Anchors {
    seen: HashMap<String, usize>,
}

impl Anchors {
    pub(crate) fn next(&mut self, heading_text: &str) -> String {
        let mut base = crate::article::slugify(heading_text);
        if base == "article" && !heading_text.to_ascii_lowercase().contains("article") {
            base = "section".to_owned();
        }
        let count = self.seen.entry(base.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            base
        } else {
            format!("{base}-{count}")
        }
    }
}

static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    for heading in ["h1", "h2", "h3", "h4", "h5", "h6"] {
        builder.add_tag_attributes(heading, &["id"]);
    }
    builder.link_rel(Some("noopener noreferrer"));
    builder
});

/// Renders article Markdown to HTML that is safe to embed: ammonia removes scripts,
/// `on*` attributes, `javascript:` URLs, iframes and styles; headings carry the
/// same `id` anchors that [`crate::split_passages`] reports.
pub fn render_markdown(md: &str) -> String {
    let mut events: Vec<Event<'_>> = Parser::new_ext(md, markdown_options()).collect();
    let mut anchors = Anchors::default();
    let mut i = 0;
    while i < events.len() {
        if matches!(events[i], Event::Start(Tag::Heading { .. })) {
            let mut text = String::new();
            for event in &events[i + 1..] {
                match event {
                    Event::End(TagEnd::Heading(_)) => break,
                    Event::Text(t) | Event::Code(t) => text.push_str(t),
                    _ => {}
                }
            }
            let anchor = anchors.next(&text);
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                *id = Some(anchor.into());
            }
        }
        i += 1;
    }
    let mut html = String::with_capacity(md.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    SANITISER.clean(&html).to_string()
}

/// One top-level Markdown block as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    Heading {
        level: u8,
        text: String,
        anchor: String,
    },
    Body(String),
}

/// Splits Markdown into top-level blocks of plain text; raw HTML is dropped.
pub(crate) fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut anchors = Anchors::default();
    let mut depth = 0usize;
    let mut text = String::new();
    let mut heading_level: Option<u8> = None;
    // Numbering of the (nested) lists we are in: Some(next number) or None for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    for event in Parser::new_ext(md, markdown_options()) {
        match event {
            Event::Start(tag) => {
                depth += 1;
                match tag {
                    Tag::Heading { level, .. } if depth == 1 => {
                        heading_level = Some(level as u8);
                    }
                    Tag::List(start) => {
                        ensure_line_break(&mut text);
                        lists.push(start);
                    }
                    Tag::Item => {
                        ensure_line_break(&mut text);
                        match lists.last_mut() {
                            Some(Some(n)) => {
                                text.push_str(&format!("{n}. "));
                                *n += 1;
                            }
                            _ => text.push_str("- "),
                        }
                    }
                    Tag::CodeBlock(CodeBlockKind::Fenced(_) | CodeBlockKind::Indented)
                    | Tag::Paragraph
                    | Tag::BlockQuote(_)
                    | Tag::TableRow
                    | Tag::TableHead => ensure_line_break(&mut text),
                    Tag::TableCell if !text.is_empty() && !text.ends_with('\n') => {
                        text.push_str(" | ");
                    }
                    _ => {}
                }
            }
            Event::End(tag) => {
                depth = depth.saturating_sub(1);
                if matches!(tag, TagEnd::List(_)) {
                    lists.pop();
                }
                if depth == 0 {
                    let block_text = tidy(&text);
                    text.clear();
                    if let Some(level) = heading_level.take() {
                        let anchor = anchors.next(&block_text);
                        out.push(Block::Heading {
                            level,
                            text: block_text,
                            anchor,
                        });
                    } else if !block_text.is_empty() {
                        out.push(Block::Body(block_text));
                    }
                } else if matches!(
                    tag,
                    TagEnd::Paragraph | TagEnd::CodeBlock | TagEnd::Item | TagEnd::TableRow
                ) {
                    ensure_line_break(&mut text);
                }
            }
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak => text.push(' '),
            Event::HardBreak => text.push('\n'),
            _ => {}
        }
    }
    out
}

fn ensure_line_break(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

/// Trims each line and drops empty ones.
fn tidy(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Markdown stripped to text: one line per paragraph, list item or heading.
pub fn plain_text(md: &str) -> String {
    blocks(md)
        .into_iter()
        .map(|b| match b {
            Block::Heading { text, .. } | Block::Body(text) => text,
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markdown_is_sanitised() {
        let md = "# Hi\n\n<script>alert('x')</script>\n\n<img src=\"a.png\" onerror=\"alert(1)\">\n\n[x](javascript:alert(1)) and <a href=\"JaVaScRiPt:alert(2)\">y</a>\n\n<iframe src=\"https://evil.example\"></iframe>\n\n<style>body{display:none}</style>\n\n<p onclick=\"steal()\">para</p>\n";
        let html = render_markdown(md);
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "<iframe",
            "<style",
            "onclick",
            "alert(1)",
        ] {
            assert!(!lower.contains(bad), "{bad} survived in {html}");
        }
        assert!(html.contains("<img src=\"a.png\""), "{html}");
        assert!(html.contains("para"), "{html}");
    }

    #[test]
    fn headings_get_unique_anchors_and_links_get_rel() {
        let html = render_markdown(
            "## Reset the password\n\ntext [site](https://example.com)\n\n## Reset the password\n\n### Done!\n",
        );
        assert!(html.contains("<h2 id=\"reset-the-password\">"), "{html}");
        assert!(html.contains("<h2 id=\"reset-the-password-2\">"), "{html}");
        assert!(html.contains("<h3 id=\"done\">"), "{html}");
        assert!(
            html.contains("href=\"https://example.com\" rel=\"noopener noreferrer\""),
            "{html}"
        );
    }

    #[test]
    fn plain_text_strips_markup_and_keeps_words() {
        let text = plain_text(
            "# Title\n\nSome **bold** and `code` with a [link](https://x.example).\n\n1. First\n2. Second\n\n- a\n- b\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n<b>raw</b>\n",
        );
        assert_eq!(
            text,
            "Title\nSome bold and code with a link.\n1. First\n2. Second\n- a\n- b\nA | B\n1 | 2\nraw"
        );
    }
}
