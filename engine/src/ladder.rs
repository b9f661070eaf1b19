//! `ladder`: which renditions a job makes, and at what size.
//!
//! A [`Ladder`] is a list of target rungs (a short-side height and a bitrate)
//! plus the audio settings and a frame-rate cap. [`Ladder::select`] fits it to
//! a source: rungs above the source are dropped (never upscale), sizes keep
//! the *display* aspect (anamorphic sources come out square-pixel), portrait
//! sources measure the short side, and every dimension is even.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::probe::{Ratio, VideoStream};

pub const DEFAULT_MAX_FPS: u32 = 60;
pub const DEFAULT_AUDIO_BITRATE_KBPS: u32 = 128;
pub const DEFAULT_AUDIO_RATE: u32 = 48_000;
pub const DEFAULT_AUDIO_CHANNELS: u32 = 2;
/// Lowest bitrate we give a source-sized fallback rung.
const MIN_FALLBACK_KBPS: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RungSpec {
    pub name: String,
    /// Target size of the short side in pixels (the "p" in 720p).
    pub height: u32,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    #[serde(default = "default_audio_bitrate")]
    pub bitrate_kbps: u32,
    #[serde(default = "default_audio_rate")]
    pub sample_rate: u32,
    #[serde(default = "default_audio_channels")]
    pub channels: u32,
}

fn default_audio_bitrate() -> u32 {
    DEFAULT_AUDIO_BITRATE_KBPS
}
fn default_audio_rate() -> u32 {
    DEFAULT_AUDIO_RATE
}
fn default_audio_channels() -> u32 {
    DEFAULT_AUDIO_CHANNELS
}

impl Default for AudioSpec {
    fn default() -> Self {
        AudioSpec {
            bitrate_kbps: DEFAULT_AUDIO_BITRATE_KBPS,
            sample_rate: DEFAULT_AUDIO_RATE,
            channels: DEFAULT_AUDIO_CHANNELS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    #[serde(default = "default_name")]
    pub name: String,
    /// Frame rates above this are reduced to it.
    #[serde(default = "default_max_fps")]
    pub max_fps: u32,
    #[serde(rename = "rung")]
    pub rungs: Vec<RungSpec>,
    #[serde(default)]
    pub audio: AudioSpec,
}

fn default_name() -> String {
    "custom".into()
}
fn default_max_fps() -> u32 {
    DEFAULT_MAX_FPS
}

/// One rung fitted to a source: what the encoder will actually produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
}

impl Ladder {
    /// The default ladder: 1080p 5000k, 720p 2800k, 480p 1400k, 360p 800k and
    /// AAC-LC 128k stereo at 48 kHz.
    pub fn default_ladder() -> Self {
        let rung = |name: &str, height, bitrate_kbps| RungSpec {
            name: name.into(),
            height,
            bitrate_kbps,
        };
        Ladder {
            name: "default".into(),
            max_fps: DEFAULT_MAX_FPS,
            rungs: vec![
                rung("1080p", 1080, 5000),
                rung("720p", 720, 2800),
                rung("480p", 480, 1400),
                rung("360p", 360, 800),
            ],
            audio: AudioSpec::default(),
        }
    }

    /// Resolve a `--ladder` argument: the name of a built-in ladder or a path
    /// to a TOML file.
    pub fn resolve(arg: &str) -> Result<Self> {
        if arg == "default" {
            return Ok(Self::default_ladder());
        }
        let path = std::path::Path::new(arg);
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Ladder {
            source_name: arg.into(),
            reason: format!("not a built-in ladder (known: default) and not a readable file: {e}"),
        })?;
        Self::from_toml(arg, &text)
    }

    /// Parse and validate a ladder from TOML text; `source_name` names it in errors.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Self> {
        let ladder: Ladder = toml::from_str(text).map_err(|e| EngineError::Ladder {
            source_name: source_name.into(),
            reason: e.to_string(),
        })?;
        ladder.validate(source_name)?;
        Ok(ladder)
    }

    pub fn validate(&self, source_name: &str) -> Result<()> {
        let bad = |reason: String| {
            Err(EngineError::Ladder {
                source_name: source_name.into(),
                reason,
            })
        };
        if self.rungs.is_empty() {
            return bad("it has no [[rung]] entries".into());
        }
        let mut names = std::collections::HashSet::new();
        for r in &self.rungs {
            if r.name.is_empty()
                || !r
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return bad(format!(
                    "rung name {:?} must be non-empty ASCII letters, digits, '_' or '-'",
                    r.name
                ));
            }
            if !names.insert(r.name.as_str()) {
                return bad(format!("rung name {:?} appears twice", r.name));
            }
            if !(16..=4320).contains(&r.height) {
                return bad(format!(
                    "rung {:?}: height {} is outside 16..=4320",
                    r.name, r.height
                ));
            }
            if !(50..=100_000).contains(&r.bitrate_kbps) {
                return bad(format!(
                    "rung {:?}: bitrate_kbps {} is outside 50..=100000",
                    r.name, r.bitrate_kbps
                ));
            }
        }
        if !(1..=240).contains(&self.max_fps) {
            return bad(format!("max_fps {} is outside 1..=240", self.max_fps));
        }
        let a = &self.audio;
        if !(16..=512).contains(&a.bitrate_kbps) {
            return bad(format!(
                "audio bitrate_kbps {} is outside 16..=512",
                a.bitrate_kbps
            ));
        }
        if ![8000, 16000, 22050, 24000, 32000, 44100, 48000].contains(&a.sample_rate) {
            return bad(format!(
                "audio sample_rate {} is not an AAC rate",
                a.sample_rate
            ));
        }
        if !(1..=2).contains(&a.channels) {
            return bad(format!("audio channels {} must be 1 or 2", a.channels));
        }
        Ok(())
    }

    /// Fit the ladder to a source. Always returns at least one rung.
    pub fn select(&self, src: &VideoStream) -> Vec<Rung> {
        let (dw, dh) = src.display_size();
        let portrait = dh > dw;
        let (short, long) = if portrait { (dw, dh) } else { (dh, dw) };
        let aspect = long / short;
        let fit = |short_px: f64| -> (u32, u32) {
            let s = even(short_px);
            let l = even(short_px * aspect);
            if portrait { (s, l) } else { (l, s) }
        };

        let mut rungs: Vec<&RungSpec> = self.rungs.iter().collect();
        rungs.sort_by_key(|r| std::cmp::Reverse(r.height));
        // A half-pixel of slack: 1079.9 display lines still count as 1080p.
        let chosen: Vec<Rung> = rungs
            .iter()
            .filter(|r| f64::from(r.height) <= short + 0.5)
            .map(|r| {
                let (width, height) = fit(f64::from(r.height).min(short));
                Rung {
                    name: r.name.clone(),
                    width,
                    height,
                    bitrate_kbps: r.bitrate_kbps,
                }
            })
            .collect();
        if !chosen.is_empty() {
            return chosen;
        }
        // Source smaller than every rung: one rung at the source's own size,
        // the smallest rung's bitrate scaled by pixel count.
        let lowest = rungs.last().expect("validated ladders have rungs");
        let (width, height) = fit(short);
        let (lw, lh) = fit(f64::from(lowest.height));
        let scale = (f64::from(width) * f64::from(height)) / (f64::from(lw) * f64::from(lh));
        let bitrate_kbps = ((f64::from(lowest.bitrate_kbps) * scale).round() as u32).clamp(
            MIN_FALLBACK_KBPS.min(lowest.bitrate_kbps),
            lowest.bitrate_kbps,
        );
        vec![Rung {
            name: format!("{}p", height.min(width)),
            width,
            height,
            bitrate_kbps,
        }]
    }

    /// The output frame rate for a source: `None` keeps the source's timing
    /// (also for variable frame rate), `Some` caps it.
    pub fn output_fps(&self, src: &VideoStream) -> Option<Ratio> {
        let fr = src.frame_rate?;
        (fr.as_f64() > f64::from(self.max_fps) + 0.01).then(|| Ratio::new(self.max_fps, 1))
    }
}

/// Round to the nearest even integer, never below 2.
fn even(x: f64) -> u32 {
    let v = ((x / 2.0).round() as u32) * 2;
    v.max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(w: u32, h: u32, par: (u32, u32), fps: Option<(u32, u32)>) -> VideoStream {
        VideoStream {
            codec: "H.264".into(),
            caps_name: "video/x-h264".into(),
            width: w,
            height: h,
            pixel_aspect: Ratio::new(par.0, par.1),
            display_aspect: crate::probe::display_aspect(w, h, Ratio::new(par.0, par.1)),
            frame_rate: fps.map(|(n, d)| Ratio::new(n, d)),
            interlaced: false,
            bitrate: None,
        }
    }

    fn sizes(rungs: &[Rung]) -> Vec<(String, u32, u32)> {
        rungs
            .iter()
            .map(|r| (r.name.clone(), r.width, r.height))
            .collect()
    }

    #[test]
    fn full_ladder_for_1080p() {
        let r = Ladder::default_ladder().select(&src(1920, 1080, (1, 1), Some((30, 1))));
        assert_eq!(
            sizes(&r),
            vec![
                ("1080p".into(), 1920, 1080),
                ("720p".into(), 1280, 720),
                ("480p".into(), 854, 480),
                ("360p".into(), 640, 360)
            ]
        );
        assert_eq!(r[0].bitrate_kbps, 5000);
    }

    #[test]
    fn never_upscales_720p() {
        let r = Ladder::default_ladder().select(&src(1280, 720, (1, 1), Some((30000, 1001))));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].height, 720);
    }

    #[test]
    fn portrait_uses_short_side() {
        let r = Ladder::default_ladder().select(&src(720, 1280, (1, 1), None));
        assert_eq!(
            sizes(&r),
            vec![
                ("720p".into(), 720, 1280),
                ("480p".into(), 480, 854),
                ("360p".into(), 360, 640)
            ]
        );
    }

    #[test]
    fn anamorphic_comes_out_square() {
        // PAL 4:3: 720x576 with 16:15 pixels displays as 768x576.
        let r = Ladder::default_ladder().select(&src(720, 576, (16, 15), Some((25, 1))));
        assert_eq!(
            sizes(&r),
            vec![("480p".into(), 640, 480), ("360p".into(), 480, 360)]
        );
    }

    #[test]
    fn tiny_source_keeps_one_rung_at_its_size() {
        let r = Ladder::default_ladder().select(&src(320, 240, (1, 1), Some((30, 1))));
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].width, r[0].height), (320, 240));
        assert!(r[0].bitrate_kbps <= 800 && r[0].bitrate_kbps >= 200);
    }

    #[test]
    fn odd_sizes_become_even() {
        let r = Ladder::default_ladder().select(&src(853, 481, (1, 1), Some((30, 1))));
        assert!(r.iter().all(|r| r.width % 2 == 0 && r.height % 2 == 0));
        assert_eq!(r[0].height, 480);
    }

    #[test]
    fn fps_cap() {
        let l = Ladder::default_ladder();
        assert_eq!(
            l.output_fps(&src(1920, 1080, (1, 1), Some((120, 1)))),
            Some(Ratio::new(60, 1))
        );
        assert_eq!(l.output_fps(&src(1920, 1080, (1, 1), Some((60, 1)))), None);
        assert_eq!(l.output_fps(&src(1920, 1080, (1, 1), None)), None);
    }

    #[test]
    fn toml_ladder() {
        let l = Ladder::from_toml(
            "t.toml",
            "max_fps = 30\n[[rung]]\nname = \"hi\"\nheight = 540\nbitrate_kbps = 2000\n[audio]\nbitrate_kbps = 96\n",
        )
        .unwrap();
        assert_eq!(l.max_fps, 30);
        assert_eq!(l.audio.bitrate_kbps, 96);
        assert_eq!(l.audio.sample_rate, 48_000);
        let r = l.select(&src(1920, 1080, (1, 1), Some((30, 1))));
        assert_eq!(sizes(&r), vec![("hi".into(), 960, 540)]);
    }

    #[test]
    fn toml_errors_name_the_file_and_field() {
        let e = Ladder::from_toml(
            "bad.toml",
            "[[rung]]\nname = \"x\"\nheight = 5\nbitrate_kbps = 100\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.toml") && e.contains("height 5"), "{e}");
        let e = Ladder::from_toml("bad.toml", "rung = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [[rung]]"), "{e}");
        let e = Ladder::from_toml(
            "bad.toml",
            "bogus = 1\n[[rung]]\nname=\"a\"\nheight=360\nbitrate_kbps=500\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
