//! `probe`: what an input file holds, read once through GStreamer's
//! Discoverer before anything is planned.
//!
//! ```text
//! path ──► Discoverer ──► Probe { container, duration, video?, audio? }
//! ```
//!
//! Errors name the file and say whether it was unreadable, not media at all,
//! unsupported (no video or audio we can decode) or corrupt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst_pbutils::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// How long Discoverer may look at one file before we call it corrupt.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// A rational number as GStreamer reports it (frame rates, pixel aspect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ratio {
    pub num: u32,
    pub den: u32,
}

impl Ratio {
    pub const fn new(num: u32, den: u32) -> Self {
        Ratio { num, den }
    }
    pub fn as_f64(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    /// Human-readable codec, e.g. "H.264 (High Profile)".
    pub codec: String,
    /// The GStreamer caps name, e.g. "video/x-h264".
    pub caps_name: String,
    /// Coded size in pixels.
    pub width: u32,
    pub height: u32,
    /// Pixel aspect ratio (1/1 for square pixels).
    pub pixel_aspect: Ratio,
    /// Display aspect ratio, reduced (16/9, 4/3, 9/16 ...).
    pub display_aspect: Ratio,
    /// Nominal frame rate; `None` when the stream is variable frame rate.
    pub frame_rate: Option<Ratio>,
    pub interlaced: bool,
    pub bitrate: Option<u32>,
}

impl VideoStream {
    /// Width and height as displayed, i.e. after applying the pixel aspect.
    pub fn display_size(&self) -> (f64, f64) {
        let par = if self.pixel_aspect.num == 0 || self.pixel_aspect.den == 0 {
            1.0
        } else {
            self.pixel_aspect.as_f64()
        };
        (f64::from(self.width) * par, f64::from(self.height))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    pub codec: String,
    pub caps_name: String,
    pub sample_rate: u32,
    pub channels: u32,
    pub bitrate: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub path: PathBuf,
    /// Container caps name, e.g. "video/quicktime"; `None` for elementary streams.
    pub container: Option<String>,
    #[serde(with = "seconds")]
    pub duration: Duration,
    /// The first video stream; further ones are ignored by the engine.
    pub video: Option<VideoStream>,
    /// The first audio stream; further ones are ignored by the engine.
    pub audio: Option<AudioStream>,
}

/// Durations in JSON are plain seconds.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Initialise GStreamer and register the plugins we link statically. Safe to
/// call more than once.
pub fn init() -> Result<()> {
    static INIT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| e.to_string())?;
        gstfmp4::plugin_register_static().map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|reason| EngineError::Pipeline {
        element: "gstreamer".into(),
        message: "initialisation failed".into(),
        debug: reason,
    })
}

/// Probe `path` with the default timeout.
pub fn probe(path: &Path) -> Result<Probe> {
    probe_with_timeout(path, DEFAULT_PROBE_TIMEOUT)
}

pub fn probe_with_timeout(path: &Path, timeout: Duration) -> Result<Probe> {
    init()?;
    check_readable(path)?;
    let uri = file_uri(path)?;
    let discoverer =
        gst_pbutils::Discoverer::new(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))?;
    let info = discoverer
        .discover_uri(&uri)
        .map_err(|e| EngineError::InputNotMedia {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    use gst_pbutils::DiscovererResult as R;
    match info.result() {
        R::Ok => {}
        R::MissingPlugins => {
            let missing = info.missing_elements_installer_details();
            return Err(EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("no decoder installed for: {}", describe_missing(&missing)),
            });
        }
        R::Timeout => {
            return Err(EngineError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("probing did not finish within {timeout:?}"),
            });
        }
        other => {
            return Err(EngineError::InputNotMedia {
                path: path.to_path_buf(),
                reason: format!("{other:?}"),
            });
        }
    }
    from_info(path, &info)
}

fn describe_missing(details: &[gst::glib::GString]) -> String {
    // Installer details look like "gstreamer|1.0|app|Description|decoder-...";
    // the fourth field is the human-readable part.
    let names: Vec<&str> = details
        .iter()
        .map(|d| d.split('|').nth(3).unwrap_or(d.as_str()))
        .collect();
    if names.is_empty() {
        "an unknown stream".into()
    } else {
        names.join(", ")
    }
}

fn from_info(path: &Path, info: &gst_pbutils::DiscovererInfo) -> Result<Probe> {
    let container = info
        .stream_info()
        .filter(|s| s.is::<gst_pbutils::DiscovererContainerInfo>())
        .and_then(|s| s.caps())
        .and_then(|c| c.structure(0).map(|s| s.name().to_string()));

    let video = info
        .video_streams()
        .into_iter()
        .next()
        .map(|v| -> Result<VideoStream> {
            if v.is_image() {
                return Err(EngineError::Unsupported {
                    path: path.to_path_buf(),
                    reason: "it is a still image, not a video".into(),
                });
            }
            let fr = v.framerate();
            let frame_rate = (fr.numer() > 0 && fr.denom() > 0)
                .then(|| Ratio::new(fr.numer() as u32, fr.denom() as u32));
            let par = v.par();
            let (codec, caps_name) = codec_of(&v);
            let pixel_aspect = if par.numer() > 0 && par.denom() > 0 {
                Ratio::new(par.numer() as u32, par.denom() as u32)
            } else {
                Ratio::new(1, 1)
            };
            Ok(VideoStream {
                codec,
                caps_name,
                width: v.width(),
                height: v.height(),
                display_aspect: display_aspect(v.width(), v.height(), pixel_aspect),
                pixel_aspect,
                frame_rate,
                interlaced: v.is_interlaced(),
                bitrate: nonzero(v.bitrate()),
            })
        })
        .transpose()?;

    let audio = info.audio_streams().into_iter().next().map(|a| {
        let (codec, caps_name) = codec_of(&a);
        AudioStream {
            codec,
            caps_name,
            sample_rate: a.sample_rate(),
            channels: a.channels(),
            bitrate: nonzero(a.bitrate()),
        }
    });

    if video.is_none() && audio.is_none() {
        return Err(EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: "it has no audio or video stream".into(),
        });
    }
    if let Some(v) = &video
        && (v.width == 0 || v.height == 0)
    {
        return Err(EngineError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("video stream reports a size of {}x{}", v.width, v.height),
        });
    }
    let duration = info
        .duration()
        .map(|d| Duration::from_nanos(d.nseconds()))
        .unwrap_or_default();
    if duration.is_zero() {
        return Err(EngineError::Corrupt {
            path: path.to_path_buf(),
            reason: "its duration is unknown or zero".into(),
        });
    }
    Ok(Probe {
        path: path.to_path_buf(),
        container,
        duration,
        video,
        audio,
    })
}

/// `width:height` as displayed, reduced.
pub fn display_aspect(width: u32, height: u32, par: Ratio) -> Ratio {
    let w = u64::from(width) * u64::from(par.num.max(1));
    let h = u64::from(height) * u64::from(par.den.max(1));
    let g = gcd(w, h).max(1);
    Ratio::new((w / g) as u32, (h / g) as u32)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn nonzero(v: u32) -> Option<u32> {
    (v > 0).then_some(v)
}

fn codec_of(stream: &impl IsA<gst_pbutils::DiscovererStreamInfo>) -> (String, String) {
    let Some(caps) = stream.caps() else {
        return ("unknown".into(), "unknown".into());
    };
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let desc = gst_pbutils::pb_utils_get_codec_description(&caps).to_string();
    (desc, name)
}

/// Fail early, with the OS's reason, for inputs that are missing, are
/// directories, are empty or cannot be opened.
pub(crate) fn check_readable(path: &Path) -> Result<()> {
    let unreadable = |reason: String| EngineError::InputUnreadable {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if meta.is_dir() {
        return Err(unreadable("it is a directory".into()));
    }
    if meta.len() == 0 {
        return Err(EngineError::InputNotMedia {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    Ok(())
}

pub(crate) fn file_uri(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path).map_err(|e| EngineError::InputUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    gst::glib::filename_to_uri(&abs, None)
        .map(|u| u.to_string())
        .map_err(|e| EngineError::InputUnreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_aspects() {
        assert_eq!(
            display_aspect(1920, 1080, Ratio::new(1, 1)),
            Ratio::new(16, 9)
        );
        assert_eq!(
            display_aspect(720, 576, Ratio::new(16, 15)),
            Ratio::new(4, 3)
        );
        assert_eq!(
            display_aspect(720, 1280, Ratio::new(1, 1)),
            Ratio::new(9, 16)
        );
    }
}
