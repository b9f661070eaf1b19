//! `bench`: encode one rung with one encoder and measure what came out, for
//! engineers comparing encoders on their own content (`strata bench`).
//!
//! ```text
//! encode:   filesrc ! decodebin ! videoconvert ! videoscale ! [videorate] ! I420 WxH
//!                   ! ENCODER ! h264parse ! mp4mux ! filesink
//! quality:  filesrc(source)  ! decodebin ! videoconvert ! videoscale ! [videorate] ! I420 WxH ! appsink
//!           filesrc(encoded) ! decodebin ! videoconvert ! videoscale ! I420 WxH ! appsink
//!           frame pairs ─► metrics::{mse, ssim} on the Y plane, in parallel (rayon)
//! ```
//!
//! The reference is the source put through the same scaler as the encode, so
//! the figures measure the encoder alone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::encoders;
use crate::error::{EngineError, Result};
use crate::exec::{encoder, make, run_to_eos};
use crate::metrics::{self, FrameQuality, Plane, QualitySummary};
use crate::plan::EncoderConfig;
use crate::probe::Ratio;

/// The picture a rung is encoded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub width: u32,
    pub height: u32,
    /// `Some` when the frame rate is capped.
    pub fps: Option<Ratio>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncodeStats {
    pub frames: u64,
    pub wall_secs: f64,
    /// CPU time of this process while the encode ran (decode and scale
    /// included; the encodes run one at a time).
    pub cpu_secs: f64,
    /// Bytes of H.264 the encoder produced (no container).
    pub video_bytes: u64,
    /// Media time covered, seconds.
    pub media_secs: f64,
}

impl EncodeStats {
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.wall_secs.max(1e-9)
    }

    pub fn bitrate_kbps(&self) -> f64 {
        self.video_bytes as f64 * 8.0 / 1000.0 / self.media_secs.max(1e-9)
    }
}

/// An encoder as `strata bench` names it: `x264:veryfast`, `x265:medium`,
/// `openh264`, or an element from the encoder table (`nvh264enc`, …),
/// configured for `bitrate_kbps` with keyframes at most `gop` frames apart.
pub fn encoder_by_name(name: &str, bitrate_kbps: u32, gop: u32) -> Result<EncoderConfig> {
    let (base, preset) = match name.split_once(':') {
        Some((b, p)) => (b, Some(p)),
        None => (name, None),
    };
    let element = match base {
        "x264" => "x264enc",
        "x265" => "x265enc",
        "openh264" => "openh264enc",
        other => other,
    };
    let unknown = || {
        EngineError::InvalidJob(format!(
            "unknown encoder {name:?} (expected x264[:PRESET], x265[:PRESET], openh264, \
             or one of: {})",
            encoders::TABLE
                .iter()
                .filter(|e| e.gop_property.is_some())
                .map(|e| e.element)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let entry = encoders::entry(element)
        .filter(|e| e.gop_property.is_some())
        .ok_or_else(unknown)?;
    let mut config = encoders::configure(entry, bitrate_kbps, Some(gop));
    if let Some(preset) = preset {
        let slot = config
            .properties
            .iter_mut()
            .find(|(k, _)| k == "speed-preset")
            .ok_or_else(|| {
                EngineError::InvalidJob(format!("encoder {element} takes no :PRESET ({name:?})"))
            })?;
        slot.1 = preset.to_string();
    }
    Ok(config)
}

/// Encode `input`'s video (its first `limit` of media time) at `target`
/// into the MP4 file `output`.
pub fn encode(
    input: &Path,
    target: &Target,
    config: &EncoderConfig,
    output: &Path,
    limit: Option<Duration>,
) -> Result<EncodeStats> {
    let pipeline = gst::Pipeline::with_name("bench-encode");
    let mut chain = scale_chain(target, "encode")?;
    let enc = encoder("encoder", config)?;
    let parse = make("h264parse", Some("parse"))?;
    let mux = make("mp4mux", Some("mux"))?;
    let sink = make("filesink", Some("sink"))?;
    sink.set_property("location", output.to_string_lossy().as_ref());
    chain.extend([enc, parse.clone(), mux, sink]);
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    decode_into(&pipeline, input, &chain[0], limit)?;

    let frames = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    // Encoders may shift timestamps (GstVideoEncoder adds an offset when
    // B-frames would make DTS negative): measure the span, not the end.
    let first_pts = Arc::new(AtomicU64::new(u64::MAX));
    let last_end = Arc::new(AtomicU64::new(0));
    let (f, b, first, l) = (
        frames.clone(),
        bytes.clone(),
        first_pts.clone(),
        last_end.clone(),
    );
    parse
        .static_pad("src")
        .expect("h264parse has a src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buf) = info.buffer() {
                f.fetch_add(1, Ordering::Relaxed);
                b.fetch_add(buf.size() as u64, Ordering::Relaxed);
                if let Some(pts) = buf.pts() {
                    first.fetch_min(pts.nseconds(), Ordering::Relaxed);
                    let end = pts + buf.duration().unwrap_or(gst::ClockTime::ZERO);
                    l.fetch_max(end.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });

    let cpu0 = cpu_time();
    let started = Instant::now();
    run_to_eos(&pipeline, input)?;
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = cpu_time() - cpu0;
    Ok(EncodeStats {
        frames: frames.load(Ordering::Relaxed),
        wall_secs,
        cpu_secs,
        video_bytes: bytes.load(Ordering::Relaxed),
        media_secs: Duration::from_nanos(
            last_end
                .load(Ordering::Relaxed)
                .saturating_sub(first_pts.load(Ordering::Relaxed)),
        )
        .as_secs_f64(),
    })
}

/// Compare `distorted` frame by frame with `reference` put through the same
/// scaling to `target` (its first `limit` of media time).
pub fn quality(
    reference: &Path,
    target: &Target,
    distorted: &Path,
    limit: Option<Duration>,
) -> Result<QualitySummary> {
    let (ref_pipeline, ref_sink) = frames_of(reference, target, limit, true)?;
    let same_size = Target {
        fps: None,
        ..*target
    };
    let (dist_pipeline, dist_sink) = frames_of(distorted, &same_size, None, false)?;
    let pipelines = [&ref_pipeline, &dist_pipeline];
    for p in pipelines {
        p.set_state(gst::State::Playing)?;
    }
    let (w, h) = (target.width as usize, target.height as usize);
    let batch = rayon::current_num_threads() * 4;
    let mut results: Vec<FrameQuality> = Vec::new();
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(batch);
    let outcome = (|| -> Result<()> {
        loop {
            let a = next_luma(&ref_sink, w, h, reference)?;
            let b = next_luma(&dist_sink, w, h, distorted)?;
            let (Some(a), Some(b)) = (a, b) else { break };
            pending.push((a, b));
            if pending.len() == batch {
                results.extend(measure(&pending, w, h));
                pending.clear();
            }
        }
        results.extend(measure(&pending, w, h));
        Ok(())
    })();
    for p in pipelines {
        let _ = p.set_state(gst::State::Null);
    }
    outcome?;
    if results.is_empty() {
        return Err(EngineError::Corrupt {
            path: distorted.to_path_buf(),
            reason: "no frames to compare".into(),
        });
    }
    Ok(metrics::summarise(&results))
}

fn measure(pairs: &[(Vec<u8>, Vec<u8>)], w: usize, h: usize) -> Vec<FrameQuality> {
    pairs
        .par_iter()
        .map(|(a, b)| {
            let (pa, pb) = (Plane::new(a, w, h), Plane::new(b, w, h));
            (metrics::mse(pa, pb), metrics::ssim(pa, pb))
        })
        .collect()
}

/// The next frame's Y plane, packed; `None` at the end of the stream.
fn next_luma(sink: &gst_app::AppSink, w: usize, h: usize, path: &Path) -> Result<Option<Vec<u8>>> {
    let sample = match sink.pull_sample() {
        Ok(s) => s,
        // EOS, or an error that the bus holds.
        Err(_) if sink.is_eos() => return Ok(None),
        Err(_) => {
            return Err(
                bus_error(sink, path).unwrap_or_else(|| EngineError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "decoding stopped".into(),
                }),
            );
        }
    };
    let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
        return Ok(None);
    };
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| EngineError::Pipeline {
        element: "appsink".into(),
        message: format!("caps without video info: {e}"),
        debug: caps.to_string(),
    })?;
    let frame =
        gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(|_| {
            EngineError::Pipeline {
                element: "appsink".into(),
                message: "cannot map a decoded frame".into(),
                debug: String::new(),
            }
        })?;
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|e| EngineError::Pipeline {
        element: "appsink".into(),
        message: format!("no Y plane: {e}"),
        debug: String::new(),
    })?;
    let mut luma = Vec::with_capacity(w * h);
    for row in data.chunks(stride).take(h) {
        luma.extend_from_slice(&row[..w]);
    }
    Ok(Some(luma))
}

fn bus_error(sink: &gst_app::AppSink, path: &Path) -> Option<EngineError> {
    let pipeline = sink.parent()?.downcast::<gst::Pipeline>().ok()?;
    let msg = pipeline
        .bus()?
        .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(EngineError::Corrupt {
            path: path.to_path_buf(),
            reason: err.error().to_string(),
        }),
        _ => None,
    }
}

/// A pipeline that decodes `path` to I420 at `target` into an appsink.
fn frames_of(
    path: &Path,
    target: &Target,
    limit: Option<Duration>,
    is_reference: bool,
) -> Result<(gst::Pipeline, gst_app::AppSink)> {
    let pipeline = gst::Pipeline::with_name(if is_reference {
        "reference"
    } else {
        "distorted"
    });
    let mut chain = scale_chain(target, "frames")?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(8)
        .build();
    chain.push(sink.clone().upcast());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    decode_into(&pipeline, path, &chain[0], limit)?;
    Ok((pipeline, sink))
}

/// videoconvert ! videoscale ! [videorate] ! I420 caps at `target`.
fn scale_chain(target: &Target, prefix: &str) -> Result<Vec<gst::Element>> {
    let convert = make("videoconvert", Some(&format!("{prefix}_convert")))?;
    let scale = make("videoscale", Some(&format!("{prefix}_scale")))?;
    scale.set_property("add-borders", false);
    let mut caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", target.width as i32)
        .field("height", target.height as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
    let mut chain = vec![convert, scale];
    if let Some(fps) = target.fps {
        chain.push(make("videorate", Some(&format!("{prefix}_rate")))?);
        caps = caps.field(
            "framerate",
            gst::Fraction::new(fps.num as i32, fps.den as i32),
        );
    }
    let filter = make("capsfilter", Some(&format!("{prefix}_caps")))?;
    filter.set_property("caps", caps.build());
    chain.push(filter);
    Ok(chain)
}

/// filesrc ! decodebin, its first video stream linked to `entry`; with a
/// `limit`, frames from that media time on are dropped and the stream ends.
fn decode_into(
    pipeline: &gst::Pipeline,
    path: &Path,
    entry: &gst::Element,
    limit: Option<Duration>,
) -> Result<()> {
    let src = make("filesrc", Some("source"))?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let decode = make("decodebin", Some("decode"))?;
    pipeline.add_many([&src, &decode])?;
    src.link(&decode)?;
    let entry = Mutex::new(Some(entry.clone()));
    decode.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/"));
        // Other streams stay unlinked: the demuxer carries on while one
        // stream is linked.
        let Some(target) = is_video.then(|| entry.lock().unwrap().take()).flatten() else {
            return;
        };
        if let Some(sink) = target.static_pad("sink") {
            let _ = pad.link(&sink);
        }
        if let Some(limit) = limit {
            let ended = AtomicBool::new(false);
            let limit = gst::ClockTime::from_nseconds(limit.as_nanos() as u64);
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let past = info
                    .buffer()
                    .and_then(|b| b.pts())
                    .is_some_and(|pts| pts >= limit);
                if !past {
                    return gst::PadProbeReturn::Ok;
                }
                if !ended.swap(true, Ordering::SeqCst) {
                    pad.push_event(gst::event::Eos::new());
                }
                gst::PadProbeReturn::Drop
            });
        }
    });
    Ok(())
}

/// User plus system CPU time of this process, seconds.
fn cpu_time() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let usage = unsafe {
        let mut u = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_names() {
        let x = encoder_by_name("x264:medium", 1000, 120).unwrap();
        assert_eq!(x.element, "x264enc");
        assert!(
            x.properties
                .contains(&("speed-preset".into(), "medium".into()))
        );
        assert!(x.properties.contains(&("bitrate".into(), "1000".into())));
        let o = encoder_by_name("openh264", 1000, 120).unwrap();
        assert!(o.properties.contains(&("bitrate".into(), "1000000".into())));
        assert_eq!(
            encoder_by_name("nvh264enc", 1000, 120).unwrap().element,
            "nvh264enc"
        );
        assert!(encoder_by_name("openh264:fast", 1000, 120).is_err());
        let e = encoder_by_name("vp8", 1000, 120).unwrap_err().to_string();
        assert!(
            e.contains("x264[:PRESET]") && e.contains("nvh264enc"),
            "{e}"
        );
        // Audio encoders are not video encoders.
        assert!(encoder_by_name("avenc_aac", 128, 1).is_err());
    }
}
