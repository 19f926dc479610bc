//! Splits an article into passages the answer bot can quote on their own.

use crate::render::{Block, blocks};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The `#`/`##` heading of the section, `None` for the intro.
    pub heading: Option<String>,
    /// The heading's `id` in the rendered article.
    pub anchor: Option<String>,
    /// Plain text, verbatim from the article (no Markdown).
    pub text: String,
}

const MIN_WORDS: usize = 40;
const MAX_WORDS: usize = 160;

/// Splits at `#` and `##` headings; a section longer than about 160 words is cut
/// between paragraphs (or sentences, for one huge paragraph) into pieces of about
/// 40–160 words. The intro before the first heading is its own passage. Sections
/// with no text are skipped.
pub fn split_passages(body_md: &str) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut heading: Option<(String, String)> = None;
    let mut section: Vec<String> = Vec::new();
    for block in blocks(body_md) {
        match block {
            Block::Heading {
                level,
                text,
                anchor,
            } if level <= 2 => {
                flush_section(&mut out, heading.take(), std::mem::take(&mut section));
                heading = Some((text, anchor));
            }
            // Deeper headings stay inside their section, as text.
            Block::Heading { text, .. } | Block::Body(text) => section.push(text),
        }
    }
    flush_section(&mut out, heading, section);
    out
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn flush_section(out: &mut Vec<Passage>, heading: Option<(String, String)>, blocks: Vec<String>) {
    let (heading, anchor) = match heading {
        Some((h, a)) => (Some(h), Some(a)),
        None => (None, None),
    };
    let mut pieces: Vec<String> = Vec::new();
    for block in blocks {
        if word_count(&block) > MAX_WORDS {
            pieces.extend(split_long_block(&block));
        } else {
            pieces.push(block);
        }
    }
    let mut chunks: Vec<(String, usize)> = Vec::new();
    for piece in pieces {
        let words = word_count(&piece);
        match chunks.last_mut() {
            Some((text, count)) if *count + words <= MAX_WORDS || *count < MIN_WORDS => {
                text.push('\n');
                text.push_str(&piece);
                *count += words;
            }
            _ => chunks.push((piece, words)),
        }
    }
    // A short tail reads better with the chunk before it.
    if chunks.len() >= 2
        && let Some((tail, tail_words)) = chunks.last().cloned()
        && tail_words < MIN_WORDS
    {
        chunks.pop();
        if let Some((text, count)) = chunks.last_mut() {
            text.push('\n');
            text.push_str(&tail);
            *count += tail_words;
        }
    }
    for (text, _) in chunks {
        out.push(Passage {
            heading: heading.clone(),
            anchor: anchor.clone(),
            text,
        });
    }
}

/// Cuts one very long paragraph at sentence ends into pieces of at most ~160 words.
fn split_long_block(block: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    for word in block.split_inclusive(char::is_whitespace) {
        current.push_str(word);
        words += 1;
        let sentence_end = word.trim_end().ends_with(['.', '!', '?']);
        if (words >= MAX_WORDS / 2 && sentence_end) || words >= MAX_WORDS {
            pieces.push(current.trim().to_owned());
            current.clear();
            words = 0;
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim().to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plain_text;

    fn words(n: usize, tag: &str) -> String {
        (0..n)
            .map(|i| format!("{tag}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn sections_become_passages_with_anchors() {
        let md = "Intro text here.\n\n## Before you start\n\nCheck the **cable**.\n\n### Detail\n\nMore.\n\n# Reset it\n\n1. Open\n2. Click\n";
        let passages = split_passages(md);
        assert_eq!(passages.len(), 3, "{passages:?}");
        assert_eq!(passages[0].heading, None);
        assert_eq!(passages[0].text, "Intro text here.");
        assert_eq!(passages[1].heading.as_deref(), Some("Before you start"));
        assert_eq!(passages[1].anchor.as_deref(), Some("before-you-start"));
        assert_eq!(passages[1].text, "Check the cable.\nDetail\nMore.");
        assert_eq!(passages[2].anchor.as_deref(), Some("reset-it"));
        assert_eq!(passages[2].text, "1. Open\n2. Click");
        // The anchors are the ids the rendered page carries.
        let html = crate::render_markdown(md);
        assert!(html.contains("id=\"before-you-start\""));
        assert!(html.contains("id=\"reset-it\""));
    }

    #[test]
    fn long_sections_split_within_bounds_and_cover_the_text() {
        let mut md = String::from("## Long\n\n");
        for p in 0..12 {
            md.push_str(&words(30 + p * 3, &format!("p{p}w")));
            md.push_str(".\n\n");
        }
        md.push_str("## Huge\n\n");
        md.push_str(&words(500, "h"));
        md.push('\n');
        let passages = split_passages(&md);
        assert!(passages.len() >= 5, "{}", passages.len());
        for p in &passages {
            let n = word_count(&p.text);
            assert!(
                (MIN_WORDS..=MAX_WORDS + MIN_WORDS).contains(&n),
                "{n} words"
            );
        }
        // A section's heading counts once, before its first passage.
        let mut all: Vec<String> = Vec::new();
        let mut previous_anchor = None;
        for p in &passages {
            if p.anchor != previous_anchor {
                all.extend(
                    p.heading
                        .iter()
                        .flat_map(|h| h.split_whitespace().map(str::to_owned)),
                );
                previous_anchor = p.anchor.clone();
            }
            all.extend(p.text.split_whitespace().map(str::to_owned));
        }
        let expected: Vec<String> = plain_text(&md)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(all, expected, "passages must cover the text in order");
    }

    #[test]
    fn empty_body_has_no_passages() {
        assert!(split_passages("").is_empty());
        assert!(split_passages("## Only a heading\n").is_empty());
    }
}
