//! `exec`: turns a [`Plan`] into a running GStreamer pipeline and streams the
//! finished segments out as they close.
//!
//! ```text
//! filesrc ! decodebin ─┬─ video: queue ! trunk ! tee
//!                      │     tee ─► queue(N frames) ! branch (scaler ! [videorate] ! caps)
//!                      │            ! (force keyframes) ! encoder ! h264parse
//!                      │            ! (split marks) ! cmafmux|mpegtsmux ! fakesink(collect)
//!                      │     … one branch per rung …
//!                      └─ audio: queue ! audioconvert ! audioresample ! caps ! aac encoder
//!                                ! aacparse ! (split marks) ! cmafmux|mpegtsmux ! fakesink(collect)
//! ```
//!
//! The trunk and branches are the plan's [`Step`] lists: on the CPU the
//! trunk is `videoconvert ! I420 [! deinterlace]` and each branch
//! `videoscale`; with frames on a GPU the trunk only pins the device memory
//! (`video/x-raw(memory:CUDAMemory)`) and each branch scales there
//! (`cudascale`, `vapostproc`), or downloads first for a CPU encoder. The
//! decoder is the plan's too: decodebin is only allowed the planned hardware
//! decoder, or only software ones.
//!
//! Segment boundaries are chosen here, by timestamp, for every rendition
//! alike: the first frame at or after `k * segment_duration` (running time)
//! is forced to be a keyframe, and right before it the muxer is told to start
//! a new segment. Collecting pad probes turn each muxer's output into
//! [`SegmentOut`] values, handed to a [`SegmentSink`] on the streaming thread
//! as soon as a segment is complete.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::error::{EngineError, Result};
use std::str::FromStr;

use crate::plan::{EncoderConfig, Format, Plan, Step};

/// How often progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// How often the bus loop wakes to look at the cancel flag.
const BUS_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The fMP4 initialisation segment (ftyp + moov).
    Init,
    /// Media segment number `n`, counting from 1.
    Media(u32),
}

/// A finished piece of output.
#[derive(Debug, Clone)]
pub struct SegmentOut {
    pub rendition: String,
    pub media: MediaKind,
    pub part: Part,
    pub data: Vec<u8>,
}

/// Receives segments as they close. Called on GStreamer streaming threads,
/// so it may block (that is the backpressure) but must not call back into
/// the pipeline. An `Err` fails the job as an output error.
pub trait SegmentSink: Send + Sync {
    fn segment(&self, segment: SegmentOut) -> std::result::Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Media time encoded so far by the slowest rendition.
    pub position: Duration,
    pub duration: Duration,
    /// Source video frames decoded so far.
    pub frames: u64,
    pub fps: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecStats {
    pub frames: u64,
    /// End of the media, in running time, as seen by the slowest rendition.
    pub media_end: Duration,
}

/// Shared between the probes and the bus loop.
struct Shared {
    output_error: Mutex<Option<String>>,
    frames: AtomicU64,
    /// Per rendition: the end (running time, ns) of the last buffer seen.
    positions: Vec<AtomicU64>,
}

impl Shared {
    fn position(&self) -> Duration {
        let min = self
            .positions
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        Duration::from_nanos(min)
    }
}

/// Run `plan` to completion. Segments go to `sink`; progress to `on_progress`.
/// Setting `cancel` stops the pipeline within about 100 ms.
pub fn run(
    plan: &Plan,
    sink: Arc<dyn SegmentSink>,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<ExecStats> {
    crate::probe::init()?;
    crate::probe::check_readable(&plan.input)?;
    let renditions =
        plan.video.as_ref().map_or(0, |v| v.renditions.len()) + usize::from(plan.audio.is_some());
    let shared = Arc::new(Shared {
        output_error: Mutex::new(None),
        frames: AtomicU64::new(0),
        positions: (0..renditions).map(|_| AtomicU64::new(0)).collect(),
    });
    let pipeline = build(plan, &sink, &shared)?;
    let result = drive(plan, &pipeline, &shared, on_progress, cancel);
    // Always return to Null, whatever happened (house style rule 5).
    let _ = pipeline.set_state(gst::State::Null);
    let media_end = shared.position();
    result?;
    check_complete(plan, media_end)?;
    Ok(ExecStats {
        frames: shared.frames.load(Ordering::Relaxed),
        media_end,
    })
}

/// A decoder that stops early without an error (a truncated file whose index
/// survived) must not pass for a complete job.
fn check_complete(plan: &Plan, media_end: Duration) -> Result<()> {
    let expected = plan.duration;
    let shortfall = expected.saturating_sub(media_end);
    if shortfall > Duration::from_secs(1) && media_end < expected.mul_f64(0.9) {
        return Err(EngineError::Corrupt {
            path: plan.input.clone(),
            reason: format!(
                "media ends at {:.3} s but the file claims {:.3} s",
                media_end.as_secs_f64(),
                expected.as_secs_f64()
            ),
        });
    }
    Ok(())
}

pub(crate) fn make(factory: &str, name: Option<&str>) -> Result<gst::Element> {
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(n);
    }
    b.build().map_err(|_| EngineError::MissingElement {
        element: factory.into(),
        purpose: "the transcode pipeline",
    })
}

fn queue(name: &str, max_buffers: u32) -> Result<gst::Element> {
    let q = make("queue", Some(name))?;
    q.set_property("max-size-buffers", max_buffers);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", 0u64);
    Ok(q)
}

fn set_props(element: &gst::Element, props: &[(String, String)]) -> Result<()> {
    for (name, value) in props {
        let pspec = element.find_property(name).ok_or_else(|| {
            EngineError::InvalidJob(format!(
                "{} has no property {name:?}",
                element
                    .factory()
                    .map(|f| f.name().to_string())
                    .unwrap_or_default()
            ))
        })?;
        let v = gst::glib::Value::deserialize_with_pspec(value, &pspec).map_err(|e| {
            EngineError::InvalidJob(format!(
                "{name}={value:?} is not valid for {}: {e}",
                element.name()
            ))
        })?;
        element.set_property_from_value(name, &v);
    }
    Ok(())
}

/// Elements for a planned chain; names get `suffix` so every branch's are
/// distinct in the pipeline (and in error messages).
fn steps(chain: &[Step], suffix: &str) -> Result<Vec<gst::Element>> {
    chain
        .iter()
        .enumerate()
        .map(|(i, step)| match step {
            Step::Element(factory) => {
                let e = make(factory, Some(&format!("{factory}_{suffix}_{i}")))?;
                // Keep the display aspect by the planned size, never by borders.
                if e.find_property("add-borders").is_some() {
                    e.set_property("add-borders", false);
                }
                Ok(e)
            }
            Step::Caps(text) => {
                let caps = gst::Caps::from_str(text).map_err(|_| {
                    EngineError::InvalidJob(format!("planned caps do not parse: {text}"))
                })?;
                let f = make("capsfilter", Some(&format!("caps_{suffix}_{i}")))?;
                f.set_property("caps", caps);
                Ok(f)
            }
        })
        .collect()
}

pub(crate) fn encoder(name: &str, cfg: &EncoderConfig) -> Result<gst::Element> {
    let e = make(&cfg.element, Some(name))?;
    set_props(&e, &cfg.properties)?;
    Ok(e)
}

/// The elements that turn one encoded stream into segments, ending in (or
/// wrapping) the collector sink `out`, and how to tell them to cut.
///
/// CMAF: `cmafmux` in manual-split mode, told by an event. TS: `splitmuxsink`
/// around `mpegtsmux`, told by `split-at-running-time`; it restarts the muxer
/// for every segment (fresh PAT/PMT, correct with B-frames) and sends `out`
/// an EOS at the end of each one.
fn segment_muxer(
    format: Format,
    id: &str,
    out: &gst::Element,
    segment: Duration,
) -> Result<(Vec<gst::Element>, Split)> {
    match format {
        Format::Cmaf => {
            let m = make("cmafmux", Some(&format!("mux_{id}")))?;
            m.set_property("manual-split", true);
            // Only used for latency reporting in manual-split mode.
            m.set_property(
                "fragment-duration",
                gst::ClockTime::from_nseconds(segment.as_nanos() as u64),
            );
            Ok((vec![m, out.clone()], Split::Event))
        }
        Format::Ts => {
            let ts = make("mpegtsmux", Some(&format!("tsmux_{id}")))?;
            ts.set_property("alignment", 7i32);
            let split = make("splitmuxsink", Some(&format!("mux_{id}")))?;
            split.set_property("muxer", &ts);
            split.set_property("sink", out);
            split.set_property("async-finalize", false);
            split.set_property("send-keyframe-requests", false);
            let weak = split.downgrade();
            Ok((vec![split], Split::Splitmux(weak)))
        }
    }
}

fn build(plan: &Plan, sink: &Arc<dyn SegmentSink>, shared: &Arc<Shared>) -> Result<gst::Pipeline> {
    let pipeline = gst::Pipeline::with_name("strata");
    let src = make("filesrc", Some("source"))?;
    src.set_property("location", plan.input.to_string_lossy().as_ref());
    let decode = make("decodebin", Some("decode"))?;
    limit_decoder_threads(&decode);
    choose_video_decoder(&decode, plan.video.as_ref().and_then(|v| v.decoder.clone()))?;
    pipeline.add_many([&src, &decode])?;
    src.link(&decode)?;
    let mut slot = 0usize;

    let video_entry = match &plan.video {
        None => None,
        Some(v) => {
            let q = queue("video_in", v.queue_frames.max(2))?;
            let mut chain = vec![q.clone()];
            chain.extend(steps(&v.trunk(), "trunk")?);
            let tee = make("tee", Some("fanout"))?;
            chain.push(tee.clone());
            pipeline.add_many(&chain)?;
            gst::Element::link_many(&chain)?;
            count_frames(&tee, shared);

            for r in &v.renditions {
                let q = queue(&format!("q_{}", r.id), v.queue_frames)?;
                let mut branch = vec![q];
                let scaling = v.branch(r);
                let size_at = scaling
                    .iter()
                    .rposition(|s| matches!(s, Step::Caps(_)))
                    .expect("a branch ends in the rung's caps");
                let built = steps(&scaling, &r.id)?;
                let filter = built[size_at].clone();
                branch.extend(built);
                let enc = encoder(&format!("enc_{}", r.id), &r.encoder)?;
                let parse = make("h264parse", Some(&format!("parse_{}", r.id)))?;
                let out = collector_sink(&format!("out_{}", r.id))?;
                let (muxing, split) =
                    segment_muxer(plan.format, &r.id, &out, plan.segment_duration)?;
                branch.extend([enc, parse.clone()]);
                branch.extend(muxing);
                pipeline.add_many(&branch)?;
                gst::Element::link_many(&branch)?;
                tee.link(&branch[0])?;
                force_keyframes(&filter, plan.segment_duration, &v.keyframes_at);
                mark_splits(&parse, split, plan.segment_duration, MediaKind::Video);
                track_position(&parse, shared, slot);
                collect(&out, plan.format, &r.id, MediaKind::Video, sink, shared);
                slot += 1;
            }
            Some(q)
        }
    };

    let audio_entry = match &plan.audio {
        None => None,
        Some(a) => {
            let q = queue("audio_in", 0)?;
            // Audio frames are small: bound the queue by time instead.
            q.set_property("max-size-time", gst::ClockTime::SECOND);
            let conv = make("audioconvert", Some("aconvert"))?;
            let resample = make("audioresample", Some("aresample"))?;
            let filter = make("capsfilter", Some("acaps"))?;
            filter.set_property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("rate", a.sample_rate as i32)
                    .field("channels", a.channels as i32)
                    .build(),
            );
            let enc = encoder(&format!("enc_{}", a.id), &a.encoder)?;
            let parse = make("aacparse", Some(&format!("parse_{}", a.id)))?;
            let out = collector_sink(&format!("out_{}", a.id))?;
            let (muxing, split) = segment_muxer(plan.format, &a.id, &out, plan.segment_duration)?;
            let mut chain = vec![q.clone(), conv, resample, filter, enc, parse.clone()];
            chain.extend(muxing);
            mark_splits(&parse, split, plan.segment_duration, MediaKind::Audio);
            track_position(&parse, shared, slot);
            pipeline.add_many(&chain)?;
            gst::Element::link_many(&chain)?;
            collect(&out, plan.format, &a.id, MediaKind::Audio, sink, shared);
            Some(q)
        }
    };

    link_decoded_pads(&pipeline, &decode, video_entry, audio_entry);
    Ok(pipeline)
}

/// Threads per libav decoder. Frame threading keeps a copy of the decoder
/// state and its reference frames per thread (about 60 MB at 1080p for the
/// default of one per core plus one), while the encoders, not the decoder,
/// are what keeps the cores busy. Measured in benches/RESULTS.md.
const DECODER_THREADS: i32 = 1;

fn limit_decoder_threads(decode: &gst::Element) {
    decode.connect("deep-element-added", false, |args| {
        if let Ok(element) = args[2].get::<gst::Element>()
            && element.find_property("max-threads").is_some()
            && element
                .factory()
                .is_some_and(|f| f.name().starts_with("avdec_"))
        {
            element.set_property("max-threads", DECODER_THREADS);
        }
        None
    });
}

/// Only the planned hardware video decoder may be used, or (with none
/// planned) only software ones: otherwise decodebin takes whatever ranks
/// highest, and a CPU plan could land on a GPU decoder.
fn choose_video_decoder(decode: &gst::Element, planned: Option<String>) -> Result<()> {
    let result_type = gst::glib::Type::from_name("GstAutoplugSelectResult")
        .ok_or_else(|| EngineError::InvalidJob("decodebin has no autoplug-select".into()))?;
    // glib values are not Send: build the answer inside the callback.
    let answer = move |nick: &str| {
        gst::glib::EnumClass::with_type(result_type).and_then(|c| c.to_value_by_nick(nick))
    };
    if answer("try").is_none() || answer("skip").is_none() {
        return Err(EngineError::InvalidJob(
            "decodebin's GstAutoplugSelectResult lacks try/skip".into(),
        ));
    }
    decode.connect("autoplug-select", false, move |args| {
        let Ok(factory) = args[3].get::<gst::ElementFactory>() else {
            return answer("try");
        };
        let klass = factory.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or("");
        if !(klass.contains("Decoder") && klass.contains("Video")) {
            return answer("try");
        }
        let hardware = klass.contains("Hardware");
        let allowed = match &planned {
            Some(name) => factory.name() == name.as_str(),
            None => !hardware,
        };
        answer(if allowed { "try" } else { "skip" })
    });
    Ok(())
}

/// decodebin exposes pads as it discovers streams: the first video and the
/// first audio stream feed the plan's branches; anything else is discarded.
/// A planned branch that never gets a stream is an input error.
fn link_decoded_pads(
    pipeline: &gst::Pipeline,
    decode: &gst::Element,
    video: Option<gst::Element>,
    audio: Option<gst::Element>,
) {
    let weak_pipeline = pipeline.downgrade();
    let entries = Arc::new(Mutex::new((video, audio)));
    let entries_for_pads = entries.clone();
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak_pipeline.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let target = {
            let mut e = entries_for_pads.lock().unwrap();
            if name.starts_with("video/") {
                e.0.take()
            } else if name.starts_with("audio/") {
                e.1.take()
            } else {
                None
            }
        };
        let linked = target
            .and_then(|t| t.static_pad("sink"))
            .is_some_and(|sink| pad.link(&sink).is_ok());
        if !linked {
            // Extra streams (a second audio track, subtitles) go nowhere.
            if let Ok(discard) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
            {
                let _ = pipeline.add(&discard);
                let _ = discard.sync_state_with_parent();
                if let Some(sink) = discard.static_pad("sink") {
                    let _ = pad.link(&sink);
                }
            }
        }
    });
    decode.connect_no_more_pads(move |decode| {
        let e = entries.lock().unwrap();
        let missing = match (&e.0, &e.1) {
            (Some(_), _) => Some("video"),
            (_, Some(_)) => Some("audio"),
            _ => None,
        };
        if let Some(kind) = missing {
            gst::element_error!(
                decode,
                gst::StreamError::CodecNotFound,
                ["the {} stream could not be decoded", kind]
            );
        }
    });
}

fn collector_sink(name: &str) -> Result<gst::Element> {
    let s = make("fakesink", Some(name))?;
    // Not synchronised to a clock, and not taking part in preroll: the
    // muxers hold a whole segment before they output anything.
    s.set_property("sync", false);
    s.set_property("async", false);
    s.set_property("enable-last-sample", false);
    Ok(s)
}

fn count_frames(tee: &gst::Element, shared: &Arc<Shared>) {
    let shared = Arc::downgrade(shared);
    if let Some(pad) = tee.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if let Some(s) = shared.upgrade() {
                s.frames.fetch_add(1, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// Running-time tracking shared by the boundary probes.
struct Clock {
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    every: u64,
    /// Index of the next boundary to act on.
    next: u64,
}

impl Clock {
    fn new(every: Duration) -> Self {
        Clock {
            segment: None,
            every: every.as_nanos() as u64,
            next: 1,
        }
    }

    fn observe_event(&mut self, event: &gst::EventRef) {
        if let gst::EventView::Segment(s) = event.view()
            && let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>()
        {
            self.segment = Some(seg);
        }
    }

    fn running_time(&self, buffer: &gst::BufferRef) -> Option<u64> {
        let pts = buffer.pts()?;
        let rt = match &self.segment {
            Some(seg) => seg.to_running_time(pts)?,
            None => pts,
        };
        Some(rt.nseconds())
    }

    /// True when `rt` reaches the next boundary; then moves past it (and past
    /// any boundary a gap in the stream skipped).
    fn crosses(&mut self, rt: u64) -> bool {
        if rt < self.next * self.every {
            return false;
        }
        while self.next * self.every <= rt {
            self.next += 1;
        }
        true
    }
}

/// Ask the encoder for a keyframe on the first frame at or after every
/// boundary (and every time in `extra`), by pushing a force-key-unit event
/// right before that frame.
fn force_keyframes(before_encoder: &gst::Element, every: Duration, extra: &[Duration]) {
    let Some(pad) = before_encoder.static_pad("src") else {
        return;
    };
    let clock = Mutex::new(Clock::new(every));
    let mut extra: Vec<u64> = extra.iter().map(|d| d.as_nanos() as u64).collect();
    extra.sort_unstable();
    let extra = Mutex::new(std::collections::VecDeque::from(extra));
    // Requests are numbered in the order they are made (boundaries and
    // extra keyframes share one sequence).
    let sent = AtomicU64::new(0);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            // The event is pushed after the lock is released: it passes through
            // this same probe on its way out.
            let event = {
                let mut clock = clock.lock().unwrap();
                match &info.data {
                    Some(gst::PadProbeData::Event(ev)) => {
                        clock.observe_event(ev);
                        None
                    }
                    Some(gst::PadProbeData::Buffer(buf)) => {
                        clock.running_time(buf).and_then(|rt| {
                            let mut extra = extra.lock().unwrap();
                            let mut wanted = false;
                            while extra.front().is_some_and(|&t| t <= rt) {
                                extra.pop_front();
                                wanted = true;
                            }
                            (clock.crosses(rt) || wanted).then(|| {
                                gst_video::DownstreamForceKeyUnitEvent::builder()
                                    .running_time(gst::ClockTime::from_nseconds(rt))
                                    .all_headers(true)
                                    .count(sent.fetch_add(1, Ordering::Relaxed) as u32 + 1)
                                    .build()
                            })
                        })
                    }
                    _ => None,
                }
            };
            if let Some(ev) = event {
                pad.push_event(ev);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Keep `shared.positions[slot]` at the end of the last buffer that left
/// `element`, in running time: the progress of one rendition.
fn track_position(element: &gst::Element, shared: &Arc<Shared>, slot: usize) {
    let Some(pad) = element.static_pad("src") else {
        return;
    };
    let shared = Arc::downgrade(shared);
    let clock = Mutex::new(Clock::new(Duration::from_secs(1)));
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut clock = clock.lock().unwrap();
            match &info.data {
                Some(gst::PadProbeData::Event(ev)) => clock.observe_event(ev),
                Some(gst::PadProbeData::Buffer(buf)) => {
                    if let (Some(rt), Some(s)) = (clock.running_time(buf), shared.upgrade()) {
                        let end = rt + buf.duration().map_or(0, |d| d.nseconds());
                        s.positions[slot].fetch_max(end, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// How a new segment is started.
enum Split {
    /// An `FMP4MuxSplitNow` event pushed right before the segment's first buffer.
    Event,
    /// A `split-at-running-time` request to a splitmuxsink.
    Splitmux(gst::glib::WeakRef<gst::Element>),
}

/// Tell the muxer where segments start: right before the first keyframe
/// (video) or buffer (audio) at or after each boundary.
fn mark_splits(before_muxer: &gst::Element, split: Split, every: Duration, media: MediaKind) {
    let Some(pad) = before_muxer.static_pad("src") else {
        return;
    };
    // (clock, started): the first buffer never starts a new segment.
    let state = Mutex::new((Clock::new(every), false));
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let event = {
                let mut guard = state.lock().unwrap();
                let (clock, started) = &mut *guard;
                match &info.data {
                    Some(gst::PadProbeData::Event(ev)) => {
                        clock.observe_event(ev);
                        None
                    }
                    Some(gst::PadProbeData::Buffer(buf)) => {
                        let Some(rt) = clock.running_time(buf) else {
                            return gst::PadProbeReturn::Ok;
                        };
                        let splittable = media == MediaKind::Audio
                            || !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        if !*started {
                            *started = true;
                            clock.crosses(rt);
                            None
                        } else if splittable && clock.crosses(rt) {
                            match &split {
                                Split::Event => Some(gst::event::CustomDownstream::new(
                                    gst::Structure::new_empty("FMP4MuxSplitNow"),
                                )),
                                Split::Splitmux(weak) => {
                                    if let Some(sm) = weak.upgrade() {
                                        let at = gst::ClockTime::from_nseconds(rt);
                                        sm.emit_by_name::<()>("split-at-running-time", &[&at]);
                                    }
                                    None
                                }
                            }
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            };
            if let Some(ev) = event {
                pad.push_event(ev);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Cut one muxer's output into init and media segments and hand them on.
struct Collector {
    rendition: String,
    media: MediaKind,
    format: Format,
    sink: Arc<dyn SegmentSink>,
    init_done: bool,
    next_index: u32,
    current: Vec<u8>,
    failed: bool,
}

impl Collector {
    fn emit(&mut self, part: Part, data: Vec<u8>) -> std::result::Result<(), String> {
        self.sink.segment(SegmentOut {
            rendition: self.rendition.clone(),
            media: self.media,
            part,
            data,
        })
    }

    fn flush_media(&mut self) -> std::result::Result<(), String> {
        if self.current.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.current);
        let index = self.next_index;
        self.next_index += 1;
        self.emit(Part::Media(index), data)
    }

    fn push_buffer(&mut self, buf: &gst::BufferRef) -> std::result::Result<(), String> {
        let flags = buf.flags();
        let map = buf.map_readable().map_err(|e| e.to_string())?;
        if self.format == Format::Cmaf && flags.contains(gst::BufferFlags::HEADER) {
            if flags.contains(gst::BufferFlags::DISCONT) {
                // ftyp+moov. Later copies (header updates) carry nothing new
                // that players need, so only the first is kept.
                if !self.init_done {
                    self.init_done = true;
                    return self.emit(Part::Init, map.to_vec());
                }
                return Ok(());
            }
            // A moof: the start of the next fragment.
            self.flush_media()?;
        }
        self.current.extend_from_slice(&map);
        Ok(())
    }

    fn on_data(&mut self, data: &gst::PadProbeData) -> std::result::Result<(), String> {
        match data {
            gst::PadProbeData::Buffer(b) => self.push_buffer(b),
            gst::PadProbeData::BufferList(list) => {
                for b in list.iter() {
                    self.push_buffer(b)?;
                }
                // cmafmux pushes each finished fragment as one list.
                if self.format == Format::Cmaf {
                    self.flush_media()
                } else {
                    Ok(())
                }
            }
            gst::PadProbeData::Event(ev) => match ev.view() {
                gst::EventView::Eos(_) => self.flush_media(),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

fn collect(
    out: &gst::Element,
    format: Format,
    rendition: &str,
    media: MediaKind,
    sink: &Arc<dyn SegmentSink>,
    shared: &Arc<Shared>,
) {
    let Some(pad) = out.static_pad("sink") else {
        return;
    };
    let shared = Arc::downgrade(shared);
    let c = Mutex::new(Collector {
        rendition: rendition.into(),
        media,
        format,
        sink: sink.clone(),
        init_done: false,
        next_index: 1,
        current: Vec::new(),
        failed: false,
    });
    pad.add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::BUFFER_LIST
            | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let mut c = c.lock().unwrap();
            if c.failed {
                return gst::PadProbeReturn::Drop;
            }
            let Some(data) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if let Err(msg) = c.on_data(data) {
                c.failed = true;
                if let Some(s) = shared.upgrade() {
                    s.output_error.lock().unwrap().get_or_insert(msg.clone());
                }
                if let Some(parent) = pad.parent_element() {
                    gst::element_error!(parent, gst::ResourceError::Write, ["{}", msg]);
                }
                return gst::PadProbeReturn::Drop;
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn drive(
    plan: &Plan,
    pipeline: &gst::Pipeline,
    shared: &Shared,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<()> {
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus.
        if let Some(msg) =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            && let gst::MessageView::Error(err) = msg.view()
        {
            return Err(classify(plan, &msg, err, shared));
        }
        return Err(EngineError::Pipeline {
            element: "strata".into(),
            message: "pipeline refused to start".into(),
            debug: String::new(),
        });
    }
    let started = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled);
        }
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(BUS_POLL.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if let Some(msg) = msg {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    report(plan, shared, started, on_progress);
                    return Ok(());
                }
                gst::MessageView::Error(err) => return Err(classify(plan, &msg, err, shared)),
                _ => {}
            }
        }
        if last_progress.elapsed() >= PROGRESS_INTERVAL {
            last_progress = Instant::now();
            report(plan, shared, started, on_progress);
        }
    }
}

fn report(plan: &Plan, shared: &Shared, started: Instant, on_progress: &mut dyn FnMut(&Progress)) {
    let frames = shared.frames.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    on_progress(&Progress {
        position: shared.position().min(plan.duration),
        duration: plan.duration,
        frames,
        fps: if secs > 0.0 {
            frames as f64 / secs
        } else {
            0.0
        },
    });
}

/// Decide whose fault an error message is: the input's (exit 3), the
/// output's (exit 4) or ours (exit 5).
fn classify(
    plan: &Plan,
    msg: &gst::Message,
    err: &gst::message::Error,
    shared: &Shared,
) -> EngineError {
    if let Some(reason) = shared.output_error.lock().unwrap().clone() {
        return EngineError::Output(reason);
    }
    let element = msg
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "unknown".into());
    let from_input = element.contains("/source") || element.contains("/decode");
    let path = plan.input.clone();
    let e = err.error();
    let reason = format!(
        "{} ({})",
        e.message(),
        element.rsplit('/').next().unwrap_or(&element)
    );
    if from_input {
        if let Some(
            gst::ResourceError::NotFound | gst::ResourceError::OpenRead | gst::ResourceError::Read,
        ) = e.kind::<gst::ResourceError>()
        {
            return EngineError::InputUnreadable { path, reason };
        }
        if let Some(kind) = e.kind::<gst::StreamError>() {
            return match kind {
                gst::StreamError::TypeNotFound
                | gst::StreamError::WrongType
                | gst::StreamError::CodecNotFound => EngineError::Unsupported { path, reason },
                _ => EngineError::Corrupt { path, reason },
            };
        }
        if let Some(gst::CoreError::MissingPlugin) = e.kind::<gst::CoreError>() {
            return EngineError::Unsupported { path, reason };
        }
    }
    EngineError::Pipeline {
        element,
        message: e.message().to_string(),
        debug: err.debug().map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// Play `pipeline` (already playing is fine) until EOS or an error, then
/// return it to Null. Errors from the `source`/`decode` elements are
/// reported as a corrupt `input`. For the small helper pipelines (bench,
/// slide stream); a transcode uses [`run`]'s own bus loop with progress.
pub(crate) fn run_to_eos(pipeline: &gst::Pipeline, input: &std::path::Path) -> Result<()> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = pipeline.set_state(gst::State::Playing);
    let result = match started {
        Err(_) => Err(EngineError::Pipeline {
            element: pipeline.name().to_string(),
            message: "pipeline refused to start".into(),
            debug: String::new(),
        }),
        Ok(_) => loop {
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::NONE,
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(()),
                gst::MessageView::Error(err) => {
                    let element = msg
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    break Err(
                        if element.contains("/source") || element.contains("/decode") {
                            EngineError::Corrupt {
                                path: input.to_path_buf(),
                                reason: err.error().to_string(),
                            }
                        } else {
                            EngineError::Pipeline {
                                element,
                                message: err.error().to_string(),
                                debug: err.debug().map(|d| d.to_string()).unwrap_or_default(),
                            }
                        },
                    );
                }
                _ => {}
            }
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_fire_once_each_and_skip_gaps() {
        let mut c = Clock::new(Duration::from_secs(6));
        let s = |x: f64| (x * 1e9) as u64;
        assert!(!c.crosses(s(0.0)));
        assert!(!c.crosses(s(5.99)));
        assert!(c.crosses(s(6.006)));
        assert!(!c.crosses(s(6.04)));
        // A gap over two boundaries fires once, then waits for the next.
        assert!(c.crosses(s(19.0)));
        assert_eq!(c.next, 4);
        assert!(!c.crosses(s(23.9)));
        assert!(c.crosses(s(24.0)));
    }

    #[test]
    fn short_output_is_corrupt_input() {
        let plan = Plan {
            input: "in.mp4".into(),
            format: Format::Cmaf,
            segment_duration: Duration::from_secs(6),
            duration: Duration::from_secs(60),
            video: None,
            audio: None,
        };
        assert!(check_complete(&plan, Duration::from_secs(30)).is_err());
        assert!(check_complete(&plan, Duration::from_millis(59_500)).is_ok());
    }
}
