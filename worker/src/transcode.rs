//! `strata transcode`: probe, plan, run the pipeline into the packager, and
//! publish (or not) — one job from start to finish.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use strata_engine::{
    Capabilities, EngineError, HwChoice, JobSpec, Ladder, Part, Plan, Probe, SegmentOut,
    SegmentSink,
};
use strata_packager::{
    Location, Packager, PackagerError, RenditionKind, RenditionSpec, SegmentFormat,
};

use strata_engine::slides::{SlideSettings, SlideTime};
use strata_worker::queue::JobRequest;

use crate::UsageError;
use crate::cli::{S3Args, TranscodeArgs};
use crate::events::Events;
use crate::storage;

/// This machine's capabilities, scanned (and hardware smoke-tested) once per
/// process.
pub fn capabilities() -> &'static Capabilities {
    static CAPS: std::sync::OnceLock<Capabilities> = std::sync::OnceLock::new();
    CAPS.get_or_init(Capabilities::detect)
}

/// A transcode request, validated.
pub struct TranscodeConfig {
    pub input: Location,
    pub output: Location,
    pub job: JobSpec,
    pub s3: S3Args,
    /// May this job hold GPU encoder sessions? (A worker's CPU slots say no.)
    pub gpu_encode: bool,
    /// A deck to render into OUT/slides/, with the slide times if known.
    pub slides: Option<(Location, Option<Vec<SlideTime>>)>,
}

impl TranscodeConfig {
    pub fn from_args(args: &TranscodeArgs) -> Result<Self> {
        Self::new(&args.encode.request(&args.input, &args.output)?, &args.s3)
    }

    /// Validate a request (from the command line or a queued job).
    pub fn new(r: &JobRequest, s3: &S3Args) -> Result<Self> {
        let segment_seconds = r.segment_duration;
        if !segment_seconds.is_finite() || !(1.0..=60.0).contains(&segment_seconds) {
            return Err(UsageError(format!(
                "--segment-duration {segment_seconds} must be between 1 and 60 seconds"
            ))
            .into());
        }
        let ladder = Ladder::resolve(&r.ladder).map_err(|e| UsageError(e.to_string()))?;
        let format = r
            .format
            .parse::<strata_engine::Format>()
            .map_err(UsageError)?;
        let hw = r.hw.parse::<HwChoice>().map_err(UsageError)?;
        Ok(TranscodeConfig {
            input: storage::parse_location(&r.input)?,
            output: storage::parse_location(&r.output)?,
            s3: s3.clone(),
            gpu_encode: true,
            slides: r
                .slides
                .as_deref()
                .map(storage::parse_location)
                .transpose()?
                .map(|deck| (deck, r.slide_times.clone())),
            job: JobSpec {
                ladder,
                format,
                segment_duration: Duration::from_secs_f64(segment_seconds),
                hw,
            },
        })
    }
}

/// Feeds the engine's segments to the packager, keeping the packager's typed
/// error (the engine only carries a message across the pipeline).
pub(crate) struct PackagerSink {
    packager: Arc<Packager>,
    error: Mutex<Option<PackagerError>>,
    events: Arc<Events>,
}

impl PackagerSink {
    pub(crate) fn new(packager: Arc<Packager>, events: Arc<Events>) -> Self {
        PackagerSink {
            packager,
            error: Mutex::new(None),
            events,
        }
    }

    /// The packager's own error, if a segment was refused.
    pub(crate) fn take_error(&self) -> Option<PackagerError> {
        self.error.lock().unwrap().take()
    }
}

impl SegmentSink for PackagerSink {
    fn segment(&self, s: SegmentOut) -> std::result::Result<(), String> {
        let result = match s.part {
            Part::Init => self.packager.add_init(&s.rendition, &s.data),
            Part::Media(n) => self.packager.add_segment(&s.rendition, n, &s.data),
        };
        match result {
            Ok(()) => {
                if let Part::Media(n) = s.part {
                    self.events.segment(&s.rendition, n, s.data.len());
                }
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                self.error.lock().unwrap().get_or_insert(e);
                Err(msg)
            }
        }
    }
}

pub fn rendition_specs(plan: &Plan, probe: &Probe) -> Vec<RenditionSpec> {
    let mut specs = Vec::new();
    if let Some(v) = &plan.video {
        let fps = v
            .output_fps
            .or(probe.video.as_ref().and_then(|p| p.frame_rate))
            .map(|r| r.as_f64());
        specs.extend(v.renditions.iter().map(|r| RenditionSpec {
            id: r.id.clone(),
            kind: RenditionKind::Video {
                width: r.width,
                height: r.height,
                frame_rate: fps,
            },
            target_bitrate: u64::from(r.bitrate_kbps) * 1000,
        }));
    }
    if let Some(a) = &plan.audio {
        specs.push(RenditionSpec {
            id: a.id.clone(),
            kind: RenditionKind::Audio {
                channels: a.channels,
                sample_rate: a.sample_rate,
            },
            target_bitrate: u64::from(a.bitrate_kbps) * 1000,
        });
    }
    specs
}

pub fn run(
    config: &TranscodeConfig,
    events: Arc<Events>,
    cancel: &AtomicBool,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    strata_engine::init()?;
    // Validate the output before any work: a missing bucket or an unwritable
    // directory fails in a second, not after the encode.
    let observer_events = events.clone();
    let store = storage::open_output(
        &config.output,
        &config.s3,
        Box::new(move |key, bytes| observer_events.uploaded(key, bytes)),
    )?;
    let input = storage::fetch_input(&config.input, &config.s3)?;
    let probe = strata_engine::probe(&input.path)?;
    events.probe(&probe);
    let probe_ms = started.elapsed().as_millis();

    let plan = if config.gpu_encode {
        strata_engine::plan(&probe, &config.job, capabilities())?
    } else {
        strata_engine::plan(&probe, &config.job, &capabilities().without_gpu_encoders())?
    };
    let format = match plan.format {
        strata_engine::Format::Cmaf => SegmentFormat::Cmaf,
        strata_engine::Format::Ts => SegmentFormat::Ts,
    };
    // The slides first: a bad deck fails the job before any of the ladder
    // is written, and the master that names slides.json comes last.
    let slides = match &config.slides {
        None => None,
        Some((deck, times)) => {
            let deck = storage::fetch_input(deck, &config.s3)?;
            Some(crate::slides::publish(
                &store,
                &deck.path,
                times.as_deref(),
                Some((
                    probe.duration.as_secs_f64(),
                    config.job.segment_duration,
                    config.job.format,
                )),
                &SlideSettings::default(),
                cancel,
            )?)
        }
    };
    let packager = Arc::new(Packager::new(
        store.clone(),
        format,
        rendition_specs(&plan, &probe),
    )?);
    if slides.is_some() {
        packager.add_session_data(
            crate::slides::SESSION_DATA_ID,
            &format!("{}/slides.json", crate::slides::DIR),
        );
    }
    let sink = Arc::new(PackagerSink::new(packager.clone(), events.clone()));

    let encode_started = Instant::now();
    let progress_events = events.clone();
    let stats = match strata_engine::exec::run(
        &plan,
        sink.clone(),
        &mut |p| progress_events.progress(p),
        cancel,
    ) {
        Ok(stats) => stats,
        Err(EngineError::Output(msg)) => {
            return Err(match sink.take_error() {
                Some(typed) => typed.into(),
                None => EngineError::Output(msg).into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let encode_ms = encode_started.elapsed().as_millis();
    events.encoded();

    let package_started = Instant::now();
    let published = packager.finish(probe.duration.as_secs_f64())?;
    let package_ms = package_started.elapsed().as_millis();

    let encode_secs = encode_ms as f64 / 1000.0;
    let report = json!({
        "source": config.input.to_string(),
        "output": config.output.to_string(),
        "input": probe,
        "format": published.format,
        "segment_duration": config.job.segment_duration.as_secs_f64(),
        "ladder": config.job.ladder.name,
        "master": "master.m3u8",
        "renditions": published.renditions,
        // What actually ran, per rung: a job can mix GPU and CPU encoders.
        "hardware": {
            "requested": config.job.hw.as_str(),
            "decoder": plan.video.as_ref().map(|v| v.decoder.clone().unwrap_or_else(|| "software".into())),
            "frames_in": plan.video.as_ref().map(|v| v.memory),
            "video": plan.video.as_ref().map(|v| v.renditions.iter().map(|r| json!({
                "rendition": r.id,
                "encoder": r.encoder.element,
                "vendor": r.vendor,
                "scaler": r.scaler,
            })).collect::<Vec<_>>()),
            "audio": plan.audio.as_ref().map(|a| a.encoder.element.clone()),
        },
        "checks": { "verify": "passed", "passed": published.checks },
        "slides": slides,
        "frames": stats.frames,
        "encode_fps": if encode_secs > 0.0 { stats.frames as f64 / encode_secs } else { 0.0 },
        "realtime_factor": if encode_secs > 0.0 { probe.duration.as_secs_f64() / encode_secs } else { 0.0 },
        "timings_ms": {
            "probe": probe_ms,
            "encode": encode_ms,
            "package": package_ms,
            "total": started.elapsed().as_millis(),
        },
    });
    let text = serde_json::to_vec_pretty(&report)?;
    store.put("report.json", &text, "application/json")?;
    store.flush()?;
    events.done(&published.master, &report);
    Ok(report)
}
