//! `plan`: the pure decision of what a job will do, as plain data.
//!
//! `plan(&Probe, &JobSpec, &Capabilities) -> Plan` chooses the renditions,
//! encoders and their properties, the keyframe schedule and the audio path.
//! It touches no GStreamer state, so every branch is unit-tested; `exec` only
//! turns a [`Plan`] into elements (house style rule 2).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::caps::{Capabilities, ElementKind};
use crate::encoders;
use crate::error::{EngineError, Result};
use crate::ladder::Ladder;
use crate::probe::{Probe, Ratio};

pub const DEFAULT_SEGMENT_DURATION: Duration = Duration::from_secs(6);
pub const MIN_SEGMENT_DURATION: Duration = Duration::from_secs(1);
pub const MAX_SEGMENT_DURATION: Duration = Duration::from_secs(60);
/// Raw frames allowed to wait in each rung's queue behind the tee. Each 1080p
/// I420 frame is about 3 MB, and the encoder keeps its own lookahead, so a
/// few frames are enough to keep the branches running in parallel while
/// keeping memory flat (see benches/RESULTS.md).
pub const DEFAULT_QUEUE_FRAMES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Fragmented MP4 (CMAF) segments with an init segment.
    #[default]
    Cmaf,
    /// MPEG transport stream segments.
    Ts,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cmaf" | "fmp4" => Ok(Format::Cmaf),
            "ts" => Ok(Format::Ts),
            other => Err(format!("unknown format {other:?} (expected cmaf or ts)")),
        }
    }
}

/// What the caller asked for, already validated by the binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub ladder: Ladder,
    pub format: Format,
    pub segment_duration: Duration,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            ladder: Ladder::default_ladder(),
            format: Format::Cmaf,
            segment_duration: DEFAULT_SEGMENT_DURATION,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub element: String,
    /// Property name and value in `gst-launch` syntax.
    pub properties: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoRendition {
    /// Also the output directory name: `video/<id>/`.
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub encoder: EncoderConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoPlan {
    pub deinterlace: bool,
    /// `Some` when the frame rate is capped; `None` keeps the source timing.
    pub output_fps: Option<Ratio>,
    pub queue_frames: u32,
    pub renditions: Vec<VideoRendition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Also the output directory name: `audio/<id>/`.
    pub id: String,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u32,
    pub encoder: EncoderConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub input: PathBuf,
    pub format: Format,
    pub segment_duration: Duration,
    /// The input's duration as probed.
    pub duration: Duration,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
}

/// The preferred encoder for `codec` on this machine; the error names
/// `wanted`, the element a standard install would have.
fn encoder_for(
    caps: &Capabilities,
    kind: ElementKind,
    codec: &str,
    wanted: &str,
    purpose: &'static str,
) -> Result<&'static encoders::EncoderEntry> {
    caps.best(kind, codec)
        .and_then(|e| encoders::entry(&e.element))
        .ok_or(EngineError::MissingElement {
            element: wanted.into(),
            purpose,
        })
}

pub fn plan(probe: &Probe, job: &JobSpec, caps: &Capabilities) -> Result<Plan> {
    if !(MIN_SEGMENT_DURATION..=MAX_SEGMENT_DURATION).contains(&job.segment_duration) {
        return Err(EngineError::InvalidJob(format!(
            "segment duration {:?} is outside {:?}..={:?}",
            job.segment_duration, MIN_SEGMENT_DURATION, MAX_SEGMENT_DURATION
        )));
    }
    let ladder = &job.ladder;

    let video = probe
        .video
        .as_ref()
        .map(|v| -> Result<VideoPlan> {
            let entry = encoder_for(
                caps,
                ElementKind::VideoEncoder,
                "h264",
                "x264enc",
                "H.264 encoding",
            )?;
            let output_fps = ladder.output_fps(v);
            // Forced keyframes land on every boundary; the encoder's own
            // maximum only has to stay out of the way, so allow two segments.
            let fps = output_fps
                .or(v.frame_rate)
                .map(Ratio::as_f64)
                .unwrap_or(f64::from(ladder.max_fps))
                .min(f64::from(ladder.max_fps));
            let gop = (job.segment_duration.as_secs_f64() * fps * 2.0).ceil() as u32;
            let renditions = ladder
                .select(v)
                .into_iter()
                .map(|r| VideoRendition {
                    encoder: encoders::configure(entry, r.bitrate_kbps, Some(gop.max(2))),
                    id: r.name,
                    width: r.width,
                    height: r.height,
                    bitrate_kbps: r.bitrate_kbps,
                })
                .collect();
            Ok(VideoPlan {
                deinterlace: v.interlaced,
                output_fps,
                queue_frames: DEFAULT_QUEUE_FRAMES,
                renditions,
            })
        })
        .transpose()?;

    let audio = probe
        .audio
        .as_ref()
        .map(|_| -> Result<AudioPlan> {
            let entry = encoder_for(
                caps,
                ElementKind::AudioEncoder,
                "aac",
                "avenc_aac",
                "AAC encoding",
            )?;
            let a = &ladder.audio;
            Ok(AudioPlan {
                id: format!("aac_{}k", a.bitrate_kbps),
                bitrate_kbps: a.bitrate_kbps,
                sample_rate: a.sample_rate,
                channels: a.channels,
                encoder: encoders::configure(entry, a.bitrate_kbps, None),
            })
        })
        .transpose()?;

    Ok(Plan {
        input: probe.path.clone(),
        format: job.format,
        segment_duration: job.segment_duration,
        duration: probe.duration,
        video,
        audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioStream, VideoStream};

    /// Width, height and frame rate (None: variable).
    type Shape = (u32, u32, Option<(u32, u32)>);

    fn probe(video: Option<Shape>, audio: bool) -> Probe {
        Probe {
            path: "in.mp4".into(),
            container: Some("video/quicktime".into()),
            duration: Duration::from_secs(10),
            video: video.map(|(w, h, fps)| VideoStream {
                codec: "H.264".into(),
                caps_name: "video/x-h264".into(),
                width: w,
                height: h,
                pixel_aspect: Ratio::new(1, 1),
                display_aspect: crate::probe::display_aspect(w, h, Ratio::new(1, 1)),
                frame_rate: fps.map(|(n, d)| Ratio::new(n, d)),
                interlaced: false,
                bitrate: None,
            }),
            audio: audio.then(|| AudioStream {
                codec: "AAC".into(),
                caps_name: "audio/mpeg".into(),
                sample_rate: 44100,
                channels: 2,
                bitrate: None,
            }),
        }
    }

    fn cpu() -> Capabilities {
        Capabilities::from_names(&["x264enc", "openh264enc", "avenc_aac"])
    }

    #[test]
    fn full_job() {
        let p = plan(
            &probe(Some((1920, 1080, Some((30, 1)))), true),
            &JobSpec::default(),
            &cpu(),
        )
        .unwrap();
        let v = p.video.unwrap();
        assert_eq!(v.renditions.len(), 4);
        assert_eq!(v.renditions[0].encoder.element, "x264enc");
        // 6 s at 30 fps, doubled.
        assert!(
            v.renditions[0]
                .encoder
                .properties
                .contains(&("key-int-max".into(), "360".into()))
        );
        let a = p.audio.unwrap();
        assert_eq!((a.sample_rate, a.channels, a.bitrate_kbps), (48000, 2, 128));
        assert_eq!(a.id, "aac_128k");
    }

    #[test]
    fn audio_only_and_video_only() {
        let p = plan(&probe(None, true), &JobSpec::default(), &cpu()).unwrap();
        assert!(p.video.is_none() && p.audio.is_some());
        let p = plan(
            &probe(Some((640, 360, Some((25, 1)))), false),
            &JobSpec::default(),
            &cpu(),
        )
        .unwrap();
        assert!(p.video.is_some() && p.audio.is_none());
    }

    #[test]
    fn falls_back_to_openh264() {
        let caps = Capabilities::from_names(&["openh264enc", "voaacenc"]);
        let p = plan(
            &probe(Some((1280, 720, Some((30, 1)))), true),
            &JobSpec::default(),
            &caps,
        )
        .unwrap();
        assert_eq!(
            p.video.unwrap().renditions[0].encoder.element,
            "openh264enc"
        );
        assert_eq!(p.audio.unwrap().encoder.element, "voaacenc");
    }

    #[test]
    fn missing_encoders_are_clear_errors() {
        let e = plan(
            &probe(Some((1280, 720, None)), false),
            &JobSpec::default(),
            &Capabilities::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("x264enc"), "{e}");
        let e = plan(
            &probe(None, true),
            &JobSpec::default(),
            &Capabilities::from_names(&["x264enc"]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("avenc_aac"), "{e}");
    }

    #[test]
    fn vfr_gop_uses_the_cap() {
        let p = plan(
            &probe(Some((1280, 720, None)), false),
            &JobSpec::default(),
            &cpu(),
        )
        .unwrap();
        let v = p.video.unwrap();
        assert_eq!(v.output_fps, None);
        assert!(
            v.renditions[0]
                .encoder
                .properties
                .contains(&("key-int-max".into(), "720".into()))
        );
    }

    #[test]
    fn high_fps_is_capped() {
        let p = plan(
            &probe(Some((1280, 720, Some((120, 1)))), false),
            &JobSpec::default(),
            &cpu(),
        )
        .unwrap();
        assert_eq!(p.video.unwrap().output_fps, Some(Ratio::new(60, 1)));
    }

    #[test]
    fn segment_duration_bounds() {
        let job = JobSpec {
            segment_duration: Duration::from_millis(500),
            ..JobSpec::default()
        };
        assert!(plan(&probe(None, true), &job, &cpu()).is_err());
    }
}
