//! The English text analysis shared by indexing and querying.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    TokenStream,
};

pub(crate) const TOKENIZER: &str = "kb_en";

/// Lucene's English stop words plus the filler of customer questions ("how do I…",
/// "can you help me…"), which would otherwise dominate the match of short passages.
const STOP_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with", // Lucene's list ends here.
    "i",
    "im",
    "i'm",
    "me",
    "my",
    "mine",
    "we",
    "our",
    "us",
    "you",
    "your",
    "he",
    "she",
    "his",
    "her",
    "them",
    "its",
    "it's",
    "do",
    "does",
    "did",
    "doing",
    "done",
    "can",
    "could",
    "would",
    "should",
    "shall",
    "may",
    "might",
    "must",
    "have",
    "has",
    "had",
    "been",
    "being",
    "am",
    "were",
    "what",
    "which",
    "who",
    "whom",
    "how",
    "why",
    "when",
    "where",
    "so",
    "just",
    "any",
    "some",
    "from",
    "about",
    "up",
    "out",
    "get",
    "got",
    "getting",
    "please",
    "hi",
    "hello",
    "thanks",
    "thank",
    "help",
    "need",
    "want",
    "wanted",
    "trying",
    "tried",
    "try",
    "keep",
    "keeps",
    "still",
    "again",
    "anyone",
    "somebody",
    "someone",
    "there's",
    "also",
    "very",
    "really",
    "all",
    "too",
    "here",
    "than",
    "there",
    "those",
    "over",
    "after",
    "before",
    "now",
    "today",
    "way",
    "know",
    "tell",
    "going",
    "like",
    "one",
    "thing",
    "something",
    "anything",
    "else",
    "other",
    "ok",
    "okay",
    "yes",
    "hey",
    "guys",
    "team",
];

pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Words of chat-style questions that carry no topic: the pieces the tokenizer
/// leaves of contractions ("won't" → "won", "t"; "I've" → "ve") and the filler of
/// "it says…", "I think…". Dropped from questions only: the index keeps them, so
/// changing this list needs no re-index.
const QUESTION_FILLER: &[&str] = &[
    "t", "s", "m", "d", "ve", "ll", "re", "don", "won", "isn", "aren", "wasn", "weren", "doesn",
    "didn", "hasn", "haven", "hadn", "couldn", "wouldn", "shouldn", "cant", "dont", "wont",
    "didnt", "doesnt", "isnt", "ive", "id", "ill", "youre", "say", "says", "said", "saying",
    "think", "thinks", "seem", "seems", "even", "though", "plz", "pls",
];

/// One content term of a question: its stem, the word as typed (lowercased), and
/// its position, for phrase clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryTerm {
    pub stem: String,
    pub word: String,
    pub position: usize,
}

/// The content terms of user text. Anything the user types is safe here: quotes,
/// colons and operators are just separators or words.
pub(crate) fn query_terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<QueryTerm> {
    let mut terms = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        let word = text
            .get(token.offset_from..token.offset_to)
            .unwrap_or(&token.text)
            .to_lowercase();
        if QUESTION_FILLER.contains(&word.as_str()) {
            continue;
        }
        terms.push(QueryTerm {
            stem: token.text.clone(),
            word,
            position: token.position,
        });
    }
    terms
}

/// The set of stems in a text, for measuring how much of a question a passage covers.
pub(crate) fn stems(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Levenshtein distance, bounded: returns `max + 1` as soon as it is exceeded.
pub(crate) fn edit_distance_within(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        let mut row_min = current[0];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            row_min = row_min.min(current[j + 1]);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()].min(max + 1)
}

/// The typo allowance of a word as typed: none under 5 characters, 1 up to 8, then 2.
pub(crate) fn fuzzy_distance(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_reduce_to_stemmed_content_terms() {
        let mut a = analyzer();
        let terms = query_terms(&mut a, "How do I reset my VPN passwords?");
        let stems: Vec<&str> = terms.iter().map(|t| t.stem.as_str()).collect();
        assert_eq!(stems, ["reset", "vpn", "password"]);
        assert_eq!(terms[2].word, "passwords");
        assert!(query_terms(&mut a, "\" : AND( ").is_empty());
        let odd = query_terms(&mut a, "title:vpn \"outlook\"");
        let stems: Vec<&str> = odd.iter().map(|t| t.stem.as_str()).collect();
        assert_eq!(stems, ["titl", "vpn", "outlook"]);
        let chatty = query_terms(&mut a, "I've been told it says the VPN won't connect");
        let stems: Vec<&str> = chatty.iter().map(|t| t.stem.as_str()).collect();
        assert_eq!(stems, ["told", "vpn", "connect"]);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(edit_distance_within("pasword", "password", 1), 1);
        assert_eq!(edit_distance_within("outlok", "outlook", 1), 1);
        assert_eq!(edit_distance_within("printer", "pointer", 1), 1);
        assert_eq!(edit_distance_within("abc", "xyz", 1), 2);
        assert_eq!(edit_distance_within("", "ab", 2), 2);
    }
}
