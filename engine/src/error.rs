//! Typed errors for the engine. Each variant says which file or element was
//! involved and what was expected, so the binary can print one clear line and
//! pick an exit code from [`ErrorClass`].

use std::path::PathBuf;

/// What kind of failure an error is, from the user's point of view. The
/// binary maps these to its documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself was wrong (bad ladder file, impossible option).
    Usage,
    /// The input is unreadable, unsupported or corrupt.
    BadInput,
    /// Writing the output failed.
    Output,
    /// The pipeline or the engine failed for reasons of its own.
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("{path}: cannot read input: {reason}")]
    InputUnreadable { path: PathBuf, reason: String },

    #[error("{path}: not a media file GStreamer can read: {reason}")]
    InputNotMedia { path: PathBuf, reason: String },

    #[error("{path}: unsupported input: {reason}")]
    Unsupported { path: PathBuf, reason: String },

    #[error("{path}: corrupt or truncated input: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("{path}: bad slide deck: {reason}")]
    BadDeck { path: PathBuf, reason: String },

    #[error("{tool} is not installed (needed for {purpose})")]
    MissingTool {
        tool: &'static str,
        purpose: &'static str,
    },

    #[error("ladder {source_name}: {reason}")]
    Ladder { source_name: String, reason: String },

    #[error("invalid job: {0}")]
    InvalidJob(String),

    #[error("GStreamer element {element:?} is not installed (needed for {purpose})")]
    MissingElement {
        element: String,
        purpose: &'static str,
    },

    #[error("--hw {requested}: {reason}")]
    HardwareUnavailable { requested: String, reason: String },

    #[error("pipeline error from {element}: {message} ({debug})")]
    Pipeline {
        element: String,
        message: String,
        debug: String,
    },

    #[error("output failed: {0}")]
    Output(String),

    #[error("transcode was cancelled")]
    Cancelled,

    #[error("GStreamer: {0}")]
    Glib(#[from] gst::glib::Error),

    #[error("GStreamer: {0}")]
    GlibBool(#[from] gst::glib::BoolError),

    #[error("GStreamer state change failed: {0}")]
    StateChange(#[from] gst::StateChangeError),
}

impl EngineError {
    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::InputUnreadable { .. }
            | EngineError::InputNotMedia { .. }
            | EngineError::Unsupported { .. }
            | EngineError::Corrupt { .. }
            | EngineError::BadDeck { .. } => ErrorClass::BadInput,
            EngineError::Ladder { .. }
            | EngineError::InvalidJob(_)
            | EngineError::HardwareUnavailable { .. } => ErrorClass::Usage,
            EngineError::Output(_) => ErrorClass::Output,
            EngineError::Cancelled
            | EngineError::MissingElement { .. }
            | EngineError::MissingTool { .. }
            | EngineError::Pipeline { .. }
            | EngineError::Glib(_)
            | EngineError::GlibBool(_)
            | EngineError::StateChange(_) => ErrorClass::Internal,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
