//! The slides package: `strata slides DECK -o OUT` and `strata transcode
//! --slides DECK`. Renders the deck (`engine::slides`), writes under
//! `OUT/slides/` the images, thumbnails, `slides.json`, `slides.vtt` and
//! `chapters.vtt`, and, when slide times are known and a recording's length
//! is given, the slide stream: its own HLS (`slides/master.m3u8`), segments
//! on the main ladder's boundaries, a keyframe at every slide change.
//!
//! Everything here is written before the main master: a deck that fails
//! fails the whole job (exit 3) with nothing published.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use strata_engine::Format;
use strata_engine::slides::{self, SlideSettings, SlideTime};
use strata_packager::{Packager, Prefixed, RenditionKind, RenditionSpec, SegmentFormat, Store};

use crate::InputError;
use crate::events::Events;
use crate::transcode::PackagerSink;

pub const DIR: &str = "slides";
/// DATA-ID of the EXT-X-SESSION-DATA entry naming slides.json.
pub const SESSION_DATA_ID: &str = "com.strata.slides";

/// `--slide-times FILE`: a JSON list of {"slide": N, "at": SECONDS}.
pub fn load_times(path: &Path) -> Result<Vec<SlideTime>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError(format!("{}: cannot read slide times: {e}", path.display())))?;
    let times: Vec<SlideTime> = serde_json::from_str(&text).map_err(|e| {
        InputError(format!(
            "{}: slide times must be a JSON list of {{\"slide\": N, \"at\": SECONDS}}: {e}",
            path.display()
        ))
    })?;
    Ok(times)
}

/// Render `deck` and write its package into `store`. With `stream` (the
/// recording's duration, the segment length and format) and known times,
/// the slide stream is encoded and packaged too.
pub fn publish(
    store: &Arc<dyn Store>,
    deck: &Path,
    times: Option<&[SlideTime]>,
    stream: Option<(f64, Duration, Format)>,
    settings: &SlideSettings,
    cancel: &AtomicBool,
) -> Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let duration = stream.map(|s| s.0);
    let rendered = slides::render(deck, times, duration, settings, cancel)?;
    let set = &rendered.set;
    for (slide, files) in set.slides.iter().zip(&rendered.files) {
        put(store, &slide.image, &files.png)?;
        put(store, &slide.thumbnail, &files.jpeg)?;
    }
    let vtt = slides::vtt(set);
    if let Some(v) = &vtt {
        put(store, "slides.vtt", v.as_bytes())?;
    }
    if let Some(c) = slides::chapters(set) {
        put(store, "chapters.vtt", c.as_bytes())?;
    }
    let timed = set.slides.iter().any(|s| s.start.is_some());
    let mut stream_playlist = None;
    if let (Some((duration, segment, format)), true) = (stream, timed) {
        stream_playlist = Some(encode_stream(
            store, &rendered, duration, segment, format, cancel,
        )?);
    }
    let json = serde_json::to_vec_pretty(&json!({
        "deck": set.deck,
        "kind": set.kind,
        "timing": set.timing,
        "slides": set.slides,
        "vtt": vtt.as_ref().map(|_| "slides.vtt"),
        "stream": stream_playlist,
    }))?;
    put(store, "slides.json", &json)?;
    store.flush()?;
    // What the package holds, for report.json.
    Ok(json!({
            "deck": set.deck,
            "slides": set.slides.len(),
            "timing": set.timing,
            "json": format!("{DIR}/slides.json"),
            "stream": stream_playlist.map(|p| format!("{DIR}/{p}")),
            "render_ms": started.elapsed().as_millis(),
    }))
}

fn put(store: &Arc<dyn Store>, name: &str, data: &[u8]) -> Result<()> {
    let key = format!("{DIR}/{name}");
    store
        .put(&key, data, strata_packager::store::content_type(&key))
        .with_context(|| format!("writing {key}"))
}

/// Encode and package the slide stream under `slides/`; returns its
/// multivariant playlist's name there.
fn encode_stream(
    store: &Arc<dyn Store>,
    rendered: &slides::Rendered,
    duration: f64,
    segment: Duration,
    format: Format,
    cancel: &AtomicBool,
) -> Result<String> {
    let scratch = tempfile::tempdir().context("scratch directory for the slide stream")?;
    let video = scratch.path().join("slides.mp4");
    let (w, h, keyframes) = slides::stream_video(
        &rendered.set,
        &rendered.files,
        duration,
        segment.as_secs_f64(),
        &video,
    )?;
    let plan = slides::stream_plan(
        &video,
        (w, h),
        keyframes,
        duration,
        segment,
        format,
        crate::transcode::capabilities(),
    )?;
    let prefixed: Arc<dyn Store> = Arc::new(Prefixed::new(store.clone(), DIR));
    let packager = Arc::new(Packager::new(
        prefixed,
        match format {
            Format::Cmaf => SegmentFormat::Cmaf,
            Format::Ts => SegmentFormat::Ts,
        },
        vec![RenditionSpec {
            id: "slides".into(),
            kind: RenditionKind::Video {
                width: w,
                height: h,
                frame_rate: None,
            },
            target_bitrate: u64::from(slides::STREAM_KBPS) * 1000,
        }],
    )?);
    let sink = Arc::new(PackagerSink::new(
        packager.clone(),
        Arc::new(Events::quiet()),
    ));
    let run = strata_engine::exec::run(&plan, sink.clone(), &mut |_| {}, cancel);
    if let Some(e) = sink.take_error() {
        return Err(e.into());
    }
    run.context("encoding the slide stream")?;
    packager
        .finish(duration)
        .context("packaging the slide stream")?;
    Ok("master.m3u8".into())
}
