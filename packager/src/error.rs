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
    #[error("{uri:?} is not a valid location: {reason}")]
    BadUri { uri: String, reason: &'static str },
    #[error("s3: {op} {location} failed: {message}")]
    S3 {
        op: &'static str,
        location: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("s3: bucket {bucket:?} does not exist (endpoint {endpoint})")]
    NoSuchBucket { bucket: String, endpoint: String },
    #[error("upload failed: {message}")]
    Upload { message: String },
    #[error("{location}: not found")]
    NotFound { location: String },
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

/// An error and all its sources on one line, for messages that must travel
/// as text (across threads or a pipeline).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
