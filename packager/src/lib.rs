//! Strata's packager: HLS and storage, no GStreamer. It names segments,
//! measures them from their bytes, writes media and multivariant playlists
//! (m3u8-rs behind our own types), verifies the whole set against the store,
//! and publishes the master playlist last.

pub mod error;
pub mod inspect;
pub mod package;
pub mod playlist;
pub mod store;
pub mod verify;

pub use error::{PackagerError, Result};
pub use package::{
    MASTER, Packager, Published, RenditionKind, RenditionReport, RenditionSpec, SegmentFormat,
};
pub use store::{LocalStore, Store};
