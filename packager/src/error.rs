//! Typed errors for packaging and storage.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackagerError {
    #[error("store: cannot write {key}")]
    Write {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store: cannot read {key}")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {key:?} is not a valid object key: {reason}")]
    BadKey { key: String, reason: &'static str },
    #[error("{what}: cannot parse {format} data: {reason}")]
    Parse {
        what: String,
        format: &'static str,
        reason: String,
    },
    #[error("rendition {0:?} was not announced to the packager")]
    UnknownRendition(String),
    #[error("rendition {rendition:?}: {reason}")]
    Incomplete { rendition: String, reason: String },
    #[error("verification failed, master playlist not published:\n  - {}", .problems.join("\n  - "))]
    Verify { problems: Vec<String> },
    #[error("playlist: {0}")]
    Playlist(String),
}

pub type Result<T, E = PackagerError> = std::result::Result<T, E>;
