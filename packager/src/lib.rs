//! Strata's packager: HLS and storage, no GStreamer. It names segments,
//! measures them from their bytes, writes media and multivariant playlists
//! (m3u8-rs behind our own types), verifies the whole set against the store,
//! and publishes the master playlist last.

pub mod error;
pub mod inspect;
pub mod location;
pub mod package;
pub mod playlist;
pub mod s3;
pub mod store;
pub mod upload;
pub mod verify;

pub use error::{PackagerError, Result};
pub use location::Location;
pub use package::{
    MASTER, Packager, Published, RenditionKind, RenditionReport, RenditionSpec, SegmentFormat,
};
pub use s3::{S3Settings, S3Store};
pub use store::{LocalStore, Prefixed, Store};
pub use upload::UploadQueue;
