//! The Markdown-with-front-matter file format used by `kb import` / `kb export`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    /// Only agents see it; never the help center or the answer bot's customers.
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ArticleStatus {
    Draft,
    #[default]
    Published,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Draft => "draft",
            ArticleStatus::Published => "published",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleSource {
    pub slug: String,
    pub title: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: ArticleStatus,
    /// Markdown, everything after the closing `---`.
    pub body: String,
}

/// A malformed article file: the 1-based line and what the parser expected there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: expected {expected}")]
pub struct FrontMatterError {
    pub line: usize,
    pub expected: String,
}

fn err(line: usize, expected: impl Into<String>) -> FrontMatterError {
    FrontMatterError {
        line,
        expected: expected.into(),
    }
}

const FENCE: &str = "---";

/// Parses a strict front-matter file: a `---` line, `key: value` lines
/// (title, category, tags, visibility, status; title required), a `---` line, the body.
pub fn parse_article_file(slug: &str, text: &str) -> Result<ArticleSource, FrontMatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if trim_eol(first) != FENCE {
        return Err(err(1, "`---` opening the front matter"));
    }
    let mut consumed = first.len();
    let mut title: Option<String> = None;
    let mut category: Option<Option<String>> = None;
    let mut tags: Option<Vec<String>> = None;
    let mut visibility: Option<Visibility> = None;
    let mut status: Option<ArticleStatus> = None;
    let mut line_no = 1;
    let mut closed = false;
    for raw in lines {
        line_no += 1;
        consumed += raw.len();
        let line = trim_eol(raw);
        if line == FENCE {
            closed = true;
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(err(line_no, "`key: value` or the closing `---`"));
        };
        let key = key.trim();
        let value = value.trim();
        let duplicate = || err(line_no, format!("`{key}` only once"));
        match key {
            "title" => {
                if value.is_empty() {
                    return Err(err(line_no, "a non-empty title"));
                }
                if title.replace(value.to_owned()).is_some() {
                    return Err(duplicate());
                }
            }
            "category" => {
                let parsed = (!value.is_empty()).then(|| value.to_owned());
                if category.replace(parsed).is_some() {
                    return Err(duplicate());
                }
            }
            "tags" => {
                let parsed = parse_tags(value).ok_or_else(|| {
                    err(
                        line_no,
                        "tags as a list like `[vpn, password]` (may be `[]`)",
                    )
                })?;
                if tags.replace(parsed).is_some() {
                    return Err(duplicate());
                }
            }
            "visibility" => {
                let parsed = match value {
                    "public" => Visibility::Public,
                    "internal" => Visibility::Internal,
                    _ => return Err(err(line_no, "visibility `public` or `internal`")),
                };
                if visibility.replace(parsed).is_some() {
                    return Err(duplicate());
                }
            }
            "status" => {
                let parsed = match value {
                    "published" => ArticleStatus::Published,
                    "draft" => ArticleStatus::Draft,
                    _ => return Err(err(line_no, "status `published` or `draft`")),
                };
                if status.replace(parsed).is_some() {
                    return Err(duplicate());
                }
            }
            _ => {
                return Err(err(
                    line_no,
                    format!(
                        "one of the keys title, category, tags, visibility, status (found `{key}`)"
                    ),
                ));
            }
        }
    }
    if !closed {
        return Err(err(line_no + 1, "`---` closing the front matter"));
    }
    let Some(title) = title else {
        return Err(err(line_no, "a `title:` line before the closing `---`"));
    };
    Ok(ArticleSource {
        slug: slug.to_owned(),
        title,
        category: category.flatten(),
        tags: tags.unwrap_or_default(),
        visibility: visibility.unwrap_or_default(),
        status: status.unwrap_or_default(),
        body: text[consumed..].to_owned(),
    })
}

fn trim_eol(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

fn parse_tags(value: &str) -> Option<Vec<String>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|tag| {
            let tag = tag.trim();
            let ok = !tag.is_empty() && !tag.contains(['[', ']', '"', '\'']);
            ok.then(|| tag.to_owned())
        })
        .collect()
}

/// Writes the file format [`parse_article_file`] reads back to the same article.
/// Line breaks in the title, and commas or brackets in tags, cannot be expressed and
/// are replaced by spaces.
pub fn to_article_file(a: &ArticleSource) -> String {
    let one_line = |s: &str| s.replace(['\r', '\n'], " ").trim().to_owned();
    let mut out = String::from("---\n");
    out.push_str(&format!("title: {}\n", one_line(&a.title)));
    if let Some(category) = a
        .category
        .as_deref()
        .map(one_line)
        .filter(|c| !c.is_empty())
    {
        out.push_str(&format!("category: {category}\n"));
    }
    let tags: Vec<String> = a
        .tags
        .iter()
        .map(|t| {
            one_line(t)
                .replace([',', '[', ']', '"', '\''], " ")
                .trim()
                .to_owned()
        })
        .filter(|t| !t.is_empty())
        .collect();
    out.push_str(&format!("tags: [{}]\n", tags.join(", ")));
    out.push_str(&format!("visibility: {}\n", a.visibility.as_str()));
    out.push_str(&format!("status: {}\n", a.status.as_str()));
    out.push_str("---\n");
    out.push_str(&a.body);
    out
}

const MAX_SLUG_LEN: usize = 80;

/// Lowercase ASCII letters, digits and single inner hyphens, at most 80 characters.
pub fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A valid slug made from a title ("Reset your VPN password" → "reset-your-vpn-password").
/// Falls back to "article" when the title has no ASCII letters or digits.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if slug.len() >= MAX_SLUG_LEN {
                break;
            }
            slug.push(c.to_ascii_lowercase());
        } else if c == '\'' || c == '\u{2019}' {
            // "don't" → "dont", not "don-t".
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "article".to_owned()
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "---\ntitle: Reset your VPN password\ncategory: VPN and remote access\ntags: [vpn, password, globalprotect]\nvisibility: internal\nstatus: draft\n---\nIntro.\n\n## Steps\n1. Go.\n";

    #[test]
    fn parses_all_keys() -> Result<(), FrontMatterError> {
        let a = parse_article_file("reset-vpn-password", SAMPLE)?;
        assert_eq!(a.title, "Reset your VPN password");
        assert_eq!(a.category.as_deref(), Some("VPN and remote access"));
        assert_eq!(a.tags, ["vpn", "password", "globalprotect"]);
        assert_eq!(a.visibility, Visibility::Internal);
        assert_eq!(a.status, ArticleStatus::Draft);
        assert_eq!(a.body, "Intro.\n\n## Steps\n1. Go.\n");
        Ok(())
    }

    #[test]
    fn defaults_apply_when_only_title_given() -> Result<(), FrontMatterError> {
        let a = parse_article_file("x", "---\ntitle: Hello\n---\nBody")?;
        assert_eq!(a.category, None);
        assert!(a.tags.is_empty());
        assert_eq!(a.visibility, Visibility::Public);
        assert_eq!(a.status, ArticleStatus::Published);
        assert_eq!(a.body, "Body");
        Ok(())
    }

    #[test]
    fn round_trips() -> Result<(), FrontMatterError> {
        let a = parse_article_file("reset-vpn-password", SAMPLE)?;
        let again = parse_article_file("reset-vpn-password", &to_article_file(&a))?;
        assert_eq!(a, again);
        let minimal = ArticleSource {
            slug: "s".into(),
            title: "T".into(),
            category: None,
            tags: vec![],
            visibility: Visibility::Public,
            status: ArticleStatus::Published,
            body: String::new(),
        };
        assert_eq!(
            parse_article_file("s", &to_article_file(&minimal))?,
            minimal
        );
        Ok(())
    }

    fn line_of(text: &str) -> (usize, String) {
        match parse_article_file("x", text) {
            Ok(a) => panic!("accepted {a:?}"),
            Err(e) => (e.line, e.expected),
        }
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let (line, expected) = line_of("title: no fence\n");
        assert_eq!(line, 1);
        assert!(expected.contains("---"), "{expected}");

        let (line, expected) = line_of("---\ntitle: T\nauthor: me\n---\n");
        assert_eq!(line, 3);
        assert!(expected.contains("author"), "{expected}");

        let (line, expected) = line_of("---\ntitle: T\nvisibility: secret\n---\n");
        assert_eq!(line, 3);
        assert!(expected.contains("public"), "{expected}");

        let (line, _) = line_of("---\ntitle: T\ntags: vpn, mail\n---\n");
        assert_eq!(line, 3);

        let (line, _) = line_of("---\ntitle: T\nstatus: live\n---\n");
        assert_eq!(line, 3);

        let (line, expected) = line_of("---\ntitle: T\ncategory: A\n");
        assert_eq!(line, 4);
        assert!(expected.contains("closing"), "{expected}");

        let (line, expected) = line_of("---\ncategory: A\n---\nbody");
        assert_eq!(line, 3);
        assert!(expected.contains("title"), "{expected}");

        let (line, _) = line_of("---\ntitle: A\ntitle: B\n---\n");
        assert_eq!(line, 3);

        let (line, _) = line_of("---\ntitle: A\njust words\n---\n");
        assert_eq!(line, 3);
    }

    #[test]
    fn accepts_crlf_files() -> Result<(), FrontMatterError> {
        let a = parse_article_file("x", "---\r\ntitle: T\r\nstatus: draft\r\n---\r\nBody\r\n")?;
        assert_eq!(a.title, "T");
        assert_eq!(a.status, ArticleStatus::Draft);
        assert_eq!(a.body, "Body\r\n");
        Ok(())
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("Reset your VPN password"),
            "reset-your-vpn-password"
        );
        assert_eq!(slugify("  Outlook: won't open!! "), "outlook-wont-open");
        assert_eq!(slugify("Ünïcode"), "n-code");
        assert_eq!(slugify("???"), "article");
        assert!(valid_slug(&slugify(&"long words ".repeat(30))));
        assert!(valid_slug("reset-vpn-password"));
        assert!(!valid_slug(""));
        assert!(!valid_slug("Reset"));
        assert!(!valid_slug("-a"));
        assert!(!valid_slug("a--b"));
        assert!(!valid_slug("a/b"));
    }
}
