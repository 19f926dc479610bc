//! The tantivy index: one document per visible article (for `search`) and one per
//! passage (for `answer`), in one index so one commit carries both and the cursor.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tantivy::collector::Count;
use tantivy::directory::MmapDirectory;
use tantivy::query::TermQuery;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Term};

use crate::analysis::{self, QueryTerm, TOKENIZER};
use crate::article::Visibility;
use crate::error::KbError;
use crate::passages::split_passages;
use crate::query::{self, FieldBoosts, TextQuery};
use crate::render::plain_text;
use crate::{fuzzy, phrase, retrieval};

/// An article as the server hands it to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedArticle {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    /// Markdown.
    pub body: String,
    pub visibility: Visibility,
    pub published: bool,
}

impl IndexedArticle {
    /// An imported article file under the database id `id`.
    pub fn from_source(id: i64, source: &crate::ArticleSource) -> Self {
        IndexedArticle {
            id,
            slug: source.slug.clone(),
            title: source.title.clone(),
            category: source.category.clone(),
            tags: source.tags.clone(),
            body: source.body.clone(),
            visibility: source.visibility,
            published: source.status == crate::ArticleStatus::Published,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// Adds or replaces the article; an unpublished one is removed.
    Upsert(IndexedArticle),
    Remove(i64),
}

/// Who is asking: the public never sees internal articles; nobody sees drafts
/// (they are never indexed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub text: String,
    pub audience: Audience,
    /// Exact category name to restrict to.
    pub category: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArticleHit {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub category: Option<String>,
    /// HTML-escaped text with `<mark>…</mark>` around the matched words.
    pub snippet_html: String,
    pub score: f32,
}

const KIND_ARTICLE: &str = "article";
const KIND_PASSAGE: &str = "passage";
const MAX_SEARCH_LIMIT: usize = 100;
const SNIPPET_CHARS: usize = 180;
/// A term in fewer than one in this many documents may be a typo: it gets fuzzy clauses.
const RARE_TERM_RATIO: u64 = 1000;
/// Candidates beyond the requested hits that phrase matches may promote.
pub(crate) const PHRASE_CANDIDATES: usize = 40;

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub kind: Field,
    pub id: Field,
    pub slug: Field,
    pub title: Field,
    pub tags: Field,
    pub category: Field,
    pub category_text: Field,
    pub heading: Field,
    pub anchor: Field,
    pub body: Field,
    pub visibility: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |stored: bool| {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let options = TextOptions::default().set_indexing_options(indexing);
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let fields = Fields {
        kind: builder.add_text_field("kind", STRING),
        id: builder.add_i64_field(
            "id",
            NumericOptions::default()
                .set_indexed()
                .set_stored()
                .set_fast(),
        ),
        slug: builder.add_text_field("slug", STRING | STORED),
        title: builder.add_text_field("title", text(true)),
        tags: builder.add_text_field("tags", text(true)),
        category: builder.add_text_field("category", STRING | STORED),
        category_text: builder.add_text_field("category_text", text(false)),
        heading: builder.add_text_field("heading", text(true)),
        anchor: builder.add_text_field("anchor", STORED),
        body: builder.add_text_field("body", text(true)),
        visibility: builder.add_text_field("visibility", STRING),
    };
    (builder.build(), fields)
}

/// The knowledge-base index. `Send + Sync`: searches run concurrently; writes
/// (`apply`, `rebuild`) are serialised by an internal lock.
pub struct KbIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    analyzer: TextAnalyzer,
    cursor: AtomicI64,
}

impl std::fmt::Debug for KbIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KbIndex")
            .field("applied_cursor", &self.applied_cursor())
            .finish_non_exhaustive()
    }
}

/// Writer heap per indexing thread (tantivy needs at least 15 MB each).
const WRITER_HEAP_PER_THREAD: usize = 40_000_000;

impl KbIndex {
    pub fn in_memory() -> Result<Self, KbError> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    /// Opens the index in `dir`, creating the directory and an empty index if missing.
    pub fn open_in_dir(dir: &Path) -> Result<Self, KbError> {
        std::fs::create_dir_all(dir).map_err(|source| KbError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        Self::from_index(index, fields)
    }

    fn from_index(mut index: Index, fields: Fields) -> Result<Self, KbError> {
        index.tokenizers().register(TOKENIZER, analysis::analyzer());
        index.set_default_multithread_executor()?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let writer = match index.writer_with_num_threads(threads, threads * WRITER_HEAP_PER_THREAD)
        {
            Err(tantivy::TantivyError::LockFailure(..)) => return Err(KbError::Busy),
            other => other?,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let cursor = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(KbIndex {
            reader,
            writer: Mutex::new(writer),
            fields,
            analyzer: analysis::analyzer(),
            cursor: AtomicI64::new(cursor),
        })
    }

    /// The cursor recorded by the last commit (0 for a new index).
    pub fn applied_cursor(&self) -> i64 {
        self.cursor.load(Ordering::Acquire)
    }

    fn writer(&self) -> Result<MutexGuard<'_, IndexWriter>, KbError> {
        self.writer.lock().map_err(|_| KbError::Poisoned)
    }

    /// Applies `changes` in one commit that records `cursor`, and makes them visible
    /// to searches before returning.
    pub fn apply(&self, changes: Vec<IndexChange>, cursor: i64) -> Result<(), KbError> {
        let mut writer = self.writer()?;
        for change in changes {
            match change {
                IndexChange::Upsert(article) => {
                    writer.delete_term(self.id_term(article.id));
                    self.add_article(&writer, &article)?;
                }
                IndexChange::Remove(id) => {
                    writer.delete_term(self.id_term(id));
                }
            }
        }
        self.commit(&mut writer, cursor)
    }

    /// Drops everything, indexes `articles` and records `cursor`, in one commit
    /// (tantivy flushes segments to disk as its heap fills, so memory stays bounded).
    /// Returns how many articles are visible.
    pub fn rebuild(
        &self,
        articles: impl IntoIterator<Item = IndexedArticle>,
        cursor: i64,
    ) -> Result<usize, KbError> {
        let mut writer = self.writer()?;
        writer.delete_all_documents()?;
        let mut indexed = 0;
        for article in articles {
            if self.add_article(&writer, &article)? {
                indexed += 1;
            }
        }
        self.commit(&mut writer, cursor)?;
        // A rebuilt index is read far more than written: one segment makes every
        // query cheaper than the many the bulk load leaves behind.
        let segments = writer.index().searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
            self.reader.reload()?;
        }
        Ok(indexed)
    }

    fn commit(&self, writer: &mut IndexWriter, cursor: i64) -> Result<(), KbError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&cursor.to_string());
        prepared.commit()?;
        self.reader.reload()?;
        self.cursor.store(cursor, Ordering::Release);
        Ok(())
    }

    fn id_term(&self, id: i64) -> Term {
        Term::from_field_i64(self.fields.id, id)
    }

    /// Adds the article document and its passages; false (nothing added) for a draft.
    fn add_article(&self, writer: &IndexWriter, article: &IndexedArticle) -> Result<bool, KbError> {
        if !article.published {
            return Ok(false);
        }
        let f = &self.fields;
        let common = |kind: &str| {
            let mut doc = TantivyDocument::default();
            doc.add_text(f.kind, kind);
            doc.add_i64(f.id, article.id);
            doc.add_text(f.slug, &article.slug);
            doc.add_text(f.title, &article.title);
            for tag in &article.tags {
                doc.add_text(f.tags, tag);
            }
            if let Some(category) = &article.category {
                doc.add_text(f.category, category);
                doc.add_text(f.category_text, category);
            }
            doc.add_text(f.visibility, article.visibility.as_str());
            doc
        };
        let mut doc = common(KIND_ARTICLE);
        doc.add_text(f.body, plain_text(&article.body));
        writer.add_document(doc)?;
        for passage in split_passages(&article.body) {
            let mut doc = common(KIND_PASSAGE);
            if let Some(heading) = &passage.heading {
                doc.add_text(f.heading, heading);
            }
            if let Some(anchor) = &passage.anchor {
                doc.add_text(f.anchor, anchor);
            }
            doc.add_text(f.body, &passage.text);
            writer.add_document(doc)?;
        }
        Ok(true)
    }

    /// Visible (published) articles in the index.
    pub fn len(&self) -> u64 {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.kind, KIND_ARTICLE),
            IndexRecordOption::Basic,
        );
        self.reader
            .searcher()
            .search(&query, &Count)
            .map_or(0, |n| n as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }

    pub(crate) fn terms_of(&self, text: &str) -> Vec<QueryTerm> {
        analysis::query_terms(&mut self.analyzer.clone(), text)
    }

    pub(crate) fn stems_of(&self, text: &str) -> Vec<String> {
        analysis::stems(&mut self.analyzer.clone(), text)
    }

    /// The text query of `terms` and the exact terms a hit must carry: its kind, the
    /// audience's visibility and the category.
    pub(crate) fn filtered_query(
        &self,
        terms: &[QueryTerm],
        boosts: &FieldBoosts,
        passages: bool,
        audience: Audience,
        category: Option<&str>,
    ) -> Option<(TextQuery, Vec<Term>)> {
        let f = &self.fields;
        let searcher = self.searcher();
        let total = searcher.num_docs();
        let is_rare = |stem: &str| {
            let doc_freq = searcher
                .doc_freq(&Term::from_field_text(f.body, stem))
                .unwrap_or(0);
            doc_freq.saturating_mul(RARE_TERM_RATIO) < total.max(1)
        };
        // A dictionary that cannot be read offers no spellings; the exact words still count.
        let near = |field: Field, stem: &str, distance: u8| {
            fuzzy::near_terms(&searcher, field, stem, distance).unwrap_or_default()
        };
        let text_query = query::text_query(f, terms, boosts, is_rare, near)?;
        let kind = if passages { KIND_PASSAGE } else { KIND_ARTICLE };
        let mut required = vec![Term::from_field_text(f.kind, kind)];
        if audience == Audience::Public {
            required.push(Term::from_field_text(
                f.visibility,
                Visibility::Public.as_str(),
            ));
        }
        if let Some(category) = category {
            required.push(Term::from_field_text(f.category, category));
        }
        Some((text_query, required))
    }

    /// The `limit` best documents for the query, phrases included: the term union
    /// picks `limit + extra` candidates, phrase matches re-rank them.
    pub(crate) fn top_docs(
        &self,
        searcher: &Searcher,
        query: &TextQuery,
        required: &[Term],
        limit: usize,
        extra: usize,
    ) -> Result<Vec<(f32, DocAddress)>, KbError> {
        if query.phrases.is_empty() {
            return retrieval::top_filtered(searcher, &*query.terms, required, limit);
        }
        let mut top = retrieval::top_filtered(searcher, &*query.terms, required, limit + extra)?;
        phrase::add_phrase_scores(searcher, &query.phrases, &mut top)?;
        top.truncate(limit);
        Ok(top)
    }

    /// Full-text search over articles, best first, with highlighted snippets.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ArticleHit>, KbError> {
        let limit = req.limit.min(MAX_SEARCH_LIMIT);
        let terms = self.terms_of(&req.text);
        let Some((query, required)) = self.filtered_query(
            &terms,
            &FieldBoosts::ARTICLES,
            false,
            req.audience,
            req.category.as_deref(),
        ) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.searcher();
        let top = self.top_docs(&searcher, &query, &required, limit, PHRASE_CANDIDATES)?;
        let mut snippets = SnippetGenerator::create(&searcher, &*query.terms, self.fields.body)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        top.into_iter()
            .map(|(score, address)| self.article_hit(&searcher, &snippets, score, address))
            .collect()
    }

    fn article_hit(
        &self,
        searcher: &Searcher,
        snippets: &SnippetGenerator,
        score: f32,
        address: DocAddress,
    ) -> Result<ArticleHit, KbError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let f = &self.fields;
        let snippet = snippets.snippet_from_doc(&doc);
        let snippet_html = if snippet.fragment().trim().is_empty() {
            // Matched on title or tags only: show the start of the article.
            escape_html(&leading_chars(&stored_text(&doc, f.body), SNIPPET_CHARS))
        } else {
            marked_snippet(snippet.fragment(), snippet.highlighted())
        };
        Ok(ArticleHit {
            id: stored_i64(&doc, f.id),
            slug: stored_text(&doc, f.slug),
            title: stored_text(&doc, f.title),
            category: stored_opt_text(&doc, f.category),
            snippet_html,
            score,
        })
    }
}

pub(crate) fn stored_text(doc: &TantivyDocument, field: Field) -> String {
    stored_opt_text(doc, field).unwrap_or_default()
}

pub(crate) fn stored_opt_text(doc: &TantivyDocument, field: Field) -> Option<String> {
    doc.get_first(field)
        .and_then(|v| v.as_str().map(str::to_owned))
}

pub(crate) fn stored_all_text(doc: &TantivyDocument, field: Field) -> Vec<String> {
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn stored_i64(doc: &TantivyDocument, field: Field) -> i64 {
    doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0)
}

fn leading_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_owned(),
    }
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes the fragment and wraps the highlighted byte ranges in `<mark>`.
fn marked_snippet(fragment: &str, highlighted: &[std::ops::Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for range in highlighted {
        let (Some(before), Some(marked)) = (
            fragment.get(at..range.start),
            fragment.get(range.start..range.end),
        ) else {
            continue;
        };
        out.push_str(&escape_html(before));
        out.push_str("<mark>");
        out.push_str(&escape_html(marked));
        out.push_str("</mark>");
        at = range.end;
    }
    out.push_str(&escape_html(fragment.get(at..).unwrap_or("")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_marks_are_wrapped_around_escaped_text() {
        assert_eq!(
            marked_snippet("a <b> password & more <", &[6..14, 17..21]),
            "a &lt;b&gt; <mark>password</mark> &amp; <mark>more</mark> &lt;"
        );
    }
}
