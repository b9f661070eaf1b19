//! `plan`: the pure decision of what a job will do, as plain data.
//!
//! `plan(&Probe, &JobSpec, &Capabilities) -> Plan` chooses the renditions,
//! encoders and their properties, the keyframe schedule and the audio path.
//! It touches no GStreamer state, so every branch is unit-tested; `exec` only
//! turns a [`Plan`] into elements (house style rule 2).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::caps::{Capabilities, ElementCap, ElementKind, Vendor, codec_id};
use crate::encoders;
use crate::error::{EngineError, Result};
use crate::ladder::Ladder;
use crate::probe::{Probe, Ratio, VideoStream};

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

/// Which hardware a job may use (`--hw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HwChoice {
    /// The best hardware present, else the CPU.
    #[default]
    Auto,
    /// Software decoders and encoders only.
    Cpu,
    Nvidia,
    Vaapi,
    Qsv,
}

impl HwChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            HwChoice::Auto => "auto",
            HwChoice::Cpu => "cpu",
            HwChoice::Nvidia => "nvidia",
            HwChoice::Vaapi => "vaapi",
            HwChoice::Qsv => "qsv",
        }
    }
}

impl std::str::FromStr for HwChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(HwChoice::Auto),
            "cpu" => Ok(HwChoice::Cpu),
            "nvidia" => Ok(HwChoice::Nvidia),
            "vaapi" => Ok(HwChoice::Vaapi),
            "qsv" => Ok(HwChoice::Qsv),
            other => Err(format!(
                "unknown hardware {other:?} (expected auto, cpu, nvidia, vaapi or qsv)"
            )),
        }
    }
}

/// What the caller asked for, already validated by the binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub ladder: Ladder,
    pub format: Format,
    pub segment_duration: Duration,
    #[serde(default)]
    pub hw: HwChoice,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            ladder: Ladder::default_ladder(),
            format: Format::Cmaf,
            segment_duration: DEFAULT_SEGMENT_DURATION,
            hw: HwChoice::Auto,
        }
    }
}

/// Where decoded frames live between the decoder and the encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FrameMemory {
    /// Ordinary system memory (software decode, or a hardware decoder that
    /// downloads its frames).
    #[default]
    System,
    /// CUDA device memory (NVDEC → CUDA scaler → NVENC).
    Cuda,
    /// VA surfaces (VA-API or QSV decode → vapostproc → encoder).
    Va,
}

impl FrameMemory {
    /// The caps feature naming this memory, if not system memory.
    fn feature(self) -> Option<&'static str> {
        match self {
            FrameMemory::System => None,
            FrameMemory::Cuda => Some("memory:CUDAMemory"),
            FrameMemory::Va => Some("memory:VAMemory"),
        }
    }

    fn of(vendor: Vendor) -> Self {
        match vendor {
            Vendor::Nvidia => FrameMemory::Cuda,
            Vendor::Vaapi | Vendor::Qsv => FrameMemory::Va,
        }
    }
}

/// One element or caps filter of a chain that `exec` builds verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// An element by factory name.
    Element(String),
    /// A capsfilter with these caps (GStreamer caps syntax).
    Caps(String),
}

fn el(name: &str) -> Step {
    Step::Element(name.into())
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
    /// The element that scales frames for this rung.
    pub scaler: String,
    pub encoder: EncoderConfig,
    /// The encoder's hardware, `None` for software.
    pub vendor: Option<Vendor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoPlan {
    /// The hardware decoder to use; `None` lets decodebin pick a software one.
    pub decoder: Option<String>,
    /// Where frames live on the fan-out.
    pub memory: FrameMemory,
    pub deinterlace: bool,
    /// `Some` when the frame rate is capped; `None` keeps the source timing.
    pub output_fps: Option<Ratio>,
    pub queue_frames: u32,
    pub renditions: Vec<VideoRendition>,
    /// Extra keyframes (beyond every segment boundary), as media time: the
    /// slide stream has one at each slide change.
    #[serde(default)]
    pub keyframes_at: Vec<Duration>,
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

/// The vendor a job uses: the one asked for, or under `auto` the one that
/// can do most of the work (decode and encode over encode only over decode
/// only; NVIDIA, then QSV, then VA-API on a tie).
fn choose_vendor(caps: &Capabilities, hw: HwChoice, codec: Option<&str>) -> Result<Option<Vendor>> {
    let score = |v: Vendor| {
        let enc = caps
            .find(ElementKind::VideoEncoder, "h264", Some(v))
            .is_some();
        let dec = codec.is_some_and(|c| caps.find(ElementKind::VideoDecoder, c, Some(v)).is_some());
        2 * u8::from(enc) + u8::from(dec)
    };
    let wanted = match hw {
        HwChoice::Cpu => return Ok(None),
        HwChoice::Auto => {
            let mut best = None;
            for v in [Vendor::Nvidia, Vendor::Qsv, Vendor::Vaapi] {
                let s = score(v);
                if s > 0 && best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, v));
                }
            }
            return Ok(best.map(|(_, v)| v));
        }
        HwChoice::Nvidia => Vendor::Nvidia,
        HwChoice::Vaapi => Vendor::Vaapi,
        HwChoice::Qsv => Vendor::Qsv,
    };
    if score(wanted) > 0 {
        Ok(Some(wanted))
    } else {
        Err(EngineError::HardwareUnavailable {
            requested: hw.as_str().into(),
            reason: format!(
                "no working {} H.264 encoder or {} decoder on this machine (see `strata caps`)",
                wanted.as_str(),
                codec.unwrap_or("input")
            ),
        })
    }
}

fn plan_video(v: &VideoStream, job: &JobSpec, caps: &Capabilities) -> Result<VideoPlan> {
    let ladder = &job.ladder;
    let codec = codec_id(&v.caps_name);
    let vendor = choose_vendor(caps, job.hw, codec)?;
    let decoder =
        vendor.and_then(|vd| codec.and_then(|c| caps.find(ElementKind::VideoDecoder, c, Some(vd))));
    let gpu_encoder = vendor.and_then(|vd| caps.find(ElementKind::VideoEncoder, "h264", Some(vd)));
    // QSV frames are VA surfaces on Linux: VA-API's post-processor scales them.
    let gpu_scaler = vendor.and_then(|vd| {
        let scaler_vendor = if vd == Vendor::Qsv { Vendor::Vaapi } else { vd };
        caps.find(ElementKind::VideoScaler, "raw", Some(scaler_vendor))
    });
    // Frames stay on the device only when it can decode, scale and encode;
    // interlaced input goes through the CPU deinterlacer.
    let memory = match (vendor, decoder, gpu_encoder, gpu_scaler) {
        (Some(vd), Some(_), Some(_), Some(_)) if !v.interlaced => FrameMemory::of(vd),
        _ => FrameMemory::System,
    };
    let output_fps = ladder.output_fps(v);
    // Forced keyframes land on every boundary; the encoder's own maximum
    // only has to stay out of the way, so allow two segments.
    let fps = output_fps
        .or(v.frame_rate)
        .map(Ratio::as_f64)
        .unwrap_or(f64::from(ladder.max_fps))
        .min(f64::from(ladder.max_fps));
    let gop = ((job.segment_duration.as_secs_f64() * fps * 2.0).ceil() as u32).max(2);
    // The device's session limit: the top rungs go to the GPU, the rest to
    // the CPU encoder (same boundaries and GOP rules either way).
    let gpu_rungs = gpu_encoder.map_or(0, |e| e.sessions.map_or(usize::MAX, |n| n as usize));
    let software = || {
        encoder_for(
            caps,
            ElementKind::VideoEncoder,
            "h264",
            "x264enc",
            "H.264 encoding",
        )
    };
    let renditions = ladder
        .select(v)
        .into_iter()
        .enumerate()
        .map(|(i, r)| -> Result<VideoRendition> {
            let (entry, enc_vendor) = match gpu_encoder.filter(|_| i < gpu_rungs) {
                Some(e) => (table_entry(e)?, e.vendor),
                None => (software()?, None),
            };
            let scaler = match (memory, enc_vendor, gpu_scaler) {
                (m, Some(_), Some(s)) if m != FrameMemory::System => s.element.clone(),
                _ => "videoscale".to_string(),
            };
            Ok(VideoRendition {
                encoder: encoders::configure(entry, r.bitrate_kbps, Some(gop)),
                vendor: enc_vendor,
                scaler,
                id: r.name,
                width: r.width,
                height: r.height,
                bitrate_kbps: r.bitrate_kbps,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(VideoPlan {
        decoder: decoder.map(|d| d.element.clone()),
        memory,
        deinterlace: v.interlaced,
        output_fps,
        queue_frames: DEFAULT_QUEUE_FRAMES,
        renditions,
        keyframes_at: Vec::new(),
    })
}

fn table_entry(e: &ElementCap) -> Result<&'static encoders::EncoderEntry> {
    encoders::entry(&e.element).ok_or(EngineError::MissingElement {
        element: e.element.clone(),
        purpose: "an encoder with a property table entry",
    })
}

impl VideoPlan {
    /// The chain from the decoder to the fan-out tee.
    pub fn trunk(&self) -> Vec<Step> {
        match self.memory.feature() {
            // Every software encoder takes 8-bit I420, and so does the
            // deinterlacer: convert once, before the fan-out.
            None => {
                let mut chain = vec![
                    el("videoconvert"),
                    Step::Caps("video/x-raw,format=I420".into()),
                ];
                if self.deinterlace {
                    chain.push(el("deinterlace"));
                }
                chain
            }
            Some(feature) => vec![Step::Caps(format!("video/x-raw({feature})"))],
        }
    }

    /// The chain from the tee to the encoder for one rung. The last caps
    /// filter carries the rung's size (and rate); forced keyframes are
    /// requested there.
    pub fn branch(&self, r: &VideoRendition) -> Vec<Step> {
        let mut chain = Vec::new();
        let on_device = r.scaler != "videoscale";
        if !on_device {
            // A CPU rung fed from device memory downloads first.
            match self.memory {
                FrameMemory::System => {}
                FrameMemory::Cuda => chain.extend([el("cudadownload"), el("videoconvert")]),
                FrameMemory::Va => chain.extend([
                    el("vapostproc"),
                    Step::Caps("video/x-raw".into()),
                    el("videoconvert"),
                ]),
            }
            if self.memory != FrameMemory::System {
                chain.push(Step::Caps("video/x-raw,format=I420".into()));
            }
        }
        chain.push(el(&r.scaler));
        let mut caps = match (on_device, self.memory.feature()) {
            (true, Some(feature)) => format!("video/x-raw({feature}),format=NV12"),
            _ => "video/x-raw".to_string(),
        };
        caps += &format!(
            ",width={},height={},pixel-aspect-ratio=1/1",
            r.width, r.height
        );
        if let Some(fps) = self.output_fps {
            chain.push(el("videorate"));
            caps += &format!(",framerate={}/{}", fps.num, fps.den);
        }
        chain.push(Step::Caps(caps));
        // Hardware encoders fed from system memory take NV12, not I420.
        if r.vendor.is_some() && !on_device {
            chain.push(el("videoconvert"));
        }
        chain
    }
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
        .map(|v| plan_video(v, job, caps))
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

    fn hd() -> Probe {
        probe(Some((1920, 1080, Some((30, 1)))), true)
    }

    fn with_hw(hw: HwChoice) -> JobSpec {
        JobSpec {
            hw,
            ..JobSpec::default()
        }
    }

    fn cpu_names() -> Vec<&'static str> {
        vec![
            "x264enc",
            "openh264enc",
            "avenc_aac",
            "avdec_h264",
            "videoscale",
        ]
    }

    fn caps_with(extra: &[&'static str]) -> Capabilities {
        let mut names = cpu_names();
        names.extend_from_slice(extra);
        Capabilities::from_names(&names)
    }

    const NVIDIA_FULL: &[&str] = &[
        "nvh264dec",
        "nvh265dec",
        "cudascale",
        "nvcudah264enc",
        "nvh264enc",
    ];

    #[test]
    fn nvidia_full_keeps_frames_on_the_gpu() {
        for hw in [HwChoice::Auto, HwChoice::Nvidia] {
            let p = plan(&hd(), &with_hw(hw), &caps_with(NVIDIA_FULL)).unwrap();
            let v = p.video.unwrap();
            assert_eq!(v.decoder.as_deref(), Some("nvh264dec"));
            assert_eq!(v.memory, FrameMemory::Cuda);
            assert_eq!(
                v.trunk(),
                vec![Step::Caps("video/x-raw(memory:CUDAMemory)".into())]
            );
            for r in &v.renditions {
                assert_eq!(r.encoder.element, "nvcudah264enc");
                assert_eq!(r.vendor, Some(Vendor::Nvidia));
                assert_eq!(r.scaler, "cudascale");
                // kbit/s, like x264; GOP in frames under NVENC's name.
                assert!(
                    r.encoder
                        .properties
                        .contains(&("bitrate".into(), r.bitrate_kbps.to_string()))
                );
                assert!(
                    r.encoder
                        .properties
                        .contains(&("gop-size".into(), "360".into()))
                );
            }
            let r = &v.renditions[1];
            assert_eq!(
                v.branch(r),
                vec![
                    Step::Element("cudascale".into()),
                    Step::Caps(format!(
                        "video/x-raw(memory:CUDAMemory),format=NV12,width={},height={},pixel-aspect-ratio=1/1",
                        r.width, r.height
                    )),
                ]
            );
        }
    }

    #[test]
    fn nvidia_decode_only_encodes_on_the_cpu() {
        // The H200: NVDEC and CUDA, no NVENC.
        let caps = caps_with(&["nvh264dec", "nvh265dec", "cudascale", "cudaconvertscale"]);
        let p = plan(&hd(), &with_hw(HwChoice::Auto), &caps).unwrap();
        let v = p.video.unwrap();
        assert_eq!(v.decoder.as_deref(), Some("nvh264dec"));
        assert_eq!(v.memory, FrameMemory::System);
        assert_eq!(v.trunk()[0], Step::Element("videoconvert".into()));
        for r in &v.renditions {
            assert_eq!((r.encoder.element.as_str(), r.vendor), ("x264enc", None));
            assert_eq!(v.branch(r)[0], Step::Element("videoscale".into()));
        }
        // Asked for explicitly, it is the same plan.
        let explicit = plan(&hd(), &with_hw(HwChoice::Nvidia), &caps).unwrap();
        assert_eq!(explicit.video.unwrap(), v);
    }

    #[test]
    fn vaapi_and_qsv() {
        let va = caps_with(&["vah264dec", "vapostproc", "vah264enc"]);
        let v = plan(&hd(), &with_hw(HwChoice::Auto), &va)
            .unwrap()
            .video
            .unwrap();
        assert_eq!(v.decoder.as_deref(), Some("vah264dec"));
        assert_eq!(v.memory, FrameMemory::Va);
        assert!(
            v.renditions
                .iter()
                .all(|r| r.encoder.element == "vah264enc" && r.scaler == "vapostproc")
        );
        assert!(
            v.renditions[0]
                .encoder
                .properties
                .contains(&("key-int-max".into(), "360".into()))
        );

        // QSV frames are VA surfaces: scaled by vapostproc.
        let qsv = caps_with(&["qsvh264dec", "qsvh264enc", "vapostproc"]);
        let v = plan(&hd(), &with_hw(HwChoice::Qsv), &qsv)
            .unwrap()
            .video
            .unwrap();
        assert_eq!(v.decoder.as_deref(), Some("qsvh264dec"));
        assert_eq!(v.memory, FrameMemory::Va);
        assert!(
            v.renditions
                .iter()
                .all(|r| r.encoder.element == "qsvh264enc" && r.vendor == Some(Vendor::Qsv))
        );
        // Without a VA scaler QSV still encodes, fed from system memory.
        let v = plan(
            &hd(),
            &with_hw(HwChoice::Qsv),
            &caps_with(&["qsvh264dec", "qsvh264enc"]),
        )
        .unwrap()
        .video
        .unwrap();
        assert_eq!(v.memory, FrameMemory::System);
        let r = &v.renditions[0];
        assert_eq!(r.scaler, "videoscale");
        assert_eq!(
            v.branch(r).last(),
            Some(&Step::Element("videoconvert".into()))
        );
    }

    #[test]
    fn auto_prefers_encode_and_decode_then_nvidia() {
        let both = caps_with(&["vah264dec", "vapostproc", "vah264enc", "nvh264dec"]);
        let v = plan(&hd(), &with_hw(HwChoice::Auto), &both)
            .unwrap()
            .video
            .unwrap();
        assert_eq!(
            v.decoder.as_deref(),
            Some("vah264dec"),
            "VA-API can encode, NVIDIA only decode"
        );
        let tie = caps_with(&["vah264enc", "nvh264enc"]);
        let v = plan(&hd(), &with_hw(HwChoice::Auto), &tie)
            .unwrap()
            .video
            .unwrap();
        assert_eq!(v.renditions[0].encoder.element, "nvh264enc");
    }

    #[test]
    fn cpu_only_and_cpu_forced() {
        let v = plan(&hd(), &with_hw(HwChoice::Auto), &caps_with(&[]))
            .unwrap()
            .video
            .unwrap();
        assert_eq!((v.decoder.clone(), v.memory), (None, FrameMemory::System));
        assert!(
            v.renditions
                .iter()
                .all(|r| r.encoder.element == "x264enc" && r.scaler == "videoscale")
        );
        // --hw cpu ignores a GPU that is there.
        let forced = plan(&hd(), &with_hw(HwChoice::Cpu), &caps_with(NVIDIA_FULL)).unwrap();
        assert_eq!(forced.video.unwrap(), v);
    }

    #[test]
    fn x264_missing_uses_openh264_in_bits_per_second() {
        let caps = Capabilities::from_names(&["openh264enc", "avenc_aac"]);
        let v = plan(&hd(), &JobSpec::default(), &caps)
            .unwrap()
            .video
            .unwrap();
        let r = &v.renditions[0];
        assert_eq!(r.encoder.element, "openh264enc");
        assert!(
            r.encoder
                .properties
                .contains(&("bitrate".into(), (r.bitrate_kbps * 1000).to_string()))
        );
        assert!(
            r.encoder
                .properties
                .contains(&("gop-size".into(), "360".into()))
        );
    }

    #[test]
    fn explicit_hardware_that_is_missing_is_an_error() {
        for hw in [HwChoice::Nvidia, HwChoice::Vaapi, HwChoice::Qsv] {
            let e = plan(&hd(), &with_hw(hw), &caps_with(&[])).unwrap_err();
            assert!(matches!(e, EngineError::HardwareUnavailable { .. }), "{e}");
            assert!(
                e.to_string().contains(hw.as_str()) && e.to_string().contains("strata caps"),
                "{e}"
            );
        }
        // A failed smoke test makes an element unusable.
        let mut caps = caps_with(&["nvcudah264enc"]);
        caps.elements
            .iter_mut()
            .find(|e| e.element == "nvcudah264enc")
            .unwrap()
            .verified = Some(false);
        assert!(plan(&hd(), &with_hw(HwChoice::Nvidia), &caps).is_err());
    }

    #[test]
    fn session_limit_sends_the_rest_to_the_cpu() {
        let mut caps = caps_with(NVIDIA_FULL);
        for e in &mut caps.elements {
            if e.kind == ElementKind::VideoEncoder && e.hardware() {
                e.sessions = Some(2);
            }
        }
        let v = plan(&hd(), &with_hw(HwChoice::Auto), &caps)
            .unwrap()
            .video
            .unwrap();
        let encoders: Vec<_> = v
            .renditions
            .iter()
            .map(|r| r.encoder.element.as_str())
            .collect();
        assert_eq!(
            encoders,
            ["nvcudah264enc", "nvcudah264enc", "x264enc", "x264enc"]
        );
        // The CPU rungs download from the device first, then scale on the CPU.
        assert_eq!(
            &v.branch(&v.renditions[3])[..4],
            &[
                Step::Element("cudadownload".into()),
                Step::Element("videoconvert".into()),
                Step::Caps("video/x-raw,format=I420".into()),
                Step::Element("videoscale".into()),
            ]
        );
        // Every rung keeps the same GOP bound, whatever encoder it uses.
        let gops: Vec<_> = v
            .renditions
            .iter()
            .map(|r| {
                r.encoder
                    .properties
                    .iter()
                    .find(|(k, _)| k == "gop-size" || k == "key-int-max")
                    .unwrap()
                    .1
                    .clone()
            })
            .collect();
        assert!(gops.iter().all(|g| g == "360"), "{gops:?}");
    }

    #[test]
    fn interlaced_input_is_deinterlaced_on_the_cpu() {
        let mut p = hd();
        p.video.as_mut().unwrap().interlaced = true;
        let v = plan(&p, &with_hw(HwChoice::Auto), &caps_with(NVIDIA_FULL))
            .unwrap()
            .video
            .unwrap();
        assert_eq!(v.memory, FrameMemory::System);
        assert!(v.trunk().contains(&Step::Element("deinterlace".into())));
        assert_eq!(v.renditions[0].encoder.element, "nvcudah264enc");
    }
}
