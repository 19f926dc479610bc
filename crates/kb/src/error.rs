use thiserror::Error;

/// Failures of the search index. Query text never causes one: user input is
/// tokenised by us, not by tantivy's query parser.
#[derive(Debug, Error)]
pub enum KbError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("search index directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Another writer (usually another process) holds the index directory.
    #[error("search index is in use by another process")]
    Busy,
    #[error("search index lock poisoned")]
    Poisoned,
}
