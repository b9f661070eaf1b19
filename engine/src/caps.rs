//! `caps`: which encoders this machine can run, as plain data.
//!
//! [`Capabilities`] is built once from the GStreamer registry and passed to
//! the planner, so tests can hand the planner any machine they like (house
//! style rule 3). Debian's nvcodec/va/qsv plugins register elements only when
//! working hardware is present, so presence in the registry means usable.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementKind {
    VideoEncoder,
    AudioEncoder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementCap {
    pub element: String,
    pub kind: ElementKind,
    /// "h264" or "aac".
    pub codec: String,
    pub hardware: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub elements: Vec<ElementCap>,
}

/// Elements the planner knows how to drive, in order of preference within
/// each codec (see `encoders::TABLE` for their properties).
const KNOWN: &[(&str, ElementKind, &str, bool)] = &[
    ("x264enc", ElementKind::VideoEncoder, "h264", false),
    ("openh264enc", ElementKind::VideoEncoder, "h264", false),
    ("avenc_aac", ElementKind::AudioEncoder, "aac", false),
    ("voaacenc", ElementKind::AudioEncoder, "aac", false),
];

impl Capabilities {
    /// Scan the GStreamer registry. Call after [`crate::init`].
    pub fn detect() -> Self {
        Self::known_where(|name| gst::ElementFactory::find(name).is_some())
    }

    /// A capability set made of the named elements (for tests and overrides).
    pub fn from_names(names: &[&str]) -> Self {
        Self::known_where(|name| names.contains(&name))
    }

    fn known_where(present: impl Fn(&str) -> bool) -> Self {
        let elements = KNOWN
            .iter()
            .filter(|(name, ..)| present(name))
            .map(|&(name, kind, codec, hardware)| ElementCap {
                element: name.into(),
                kind,
                codec: codec.into(),
                hardware,
            })
            .collect();
        Capabilities { elements }
    }

    /// The preferred element of `kind` for `codec`, if any.
    pub fn best(&self, kind: ElementKind, codec: &str) -> Option<&ElementCap> {
        KNOWN
            .iter()
            .filter(|(_, k, c, _)| *k == kind && *c == codec)
            .find_map(|(name, ..)| self.elements.iter().find(|e| e.element == *name))
    }
}
