//! `slides`: a lecture deck (.pptx, .ppt, .odp, .pdf) becomes slide images,
//! thumbnails, text and a timeline.
//!
//! ```text
//! deck ─► sniff (magic bytes; encrypted? zip bomb?) ─┬─ .pdf ──────────────────────────┐
//!                                                    └─ office ─► LibreOffice ─► PDF ──┤
//!      (.pptx/.odp: titles, body, notes, auto-advance read from the XML)              │
//!  PDF ─► hayro, pages in parallel (rayon) ─► PNG 1920 px wide + JPEG 320 px thumbnail ◄┘
//!      ─► SlideSet (+ times from --slide-times or the deck's auto-advance)
//! ```
//!
//! LibreOffice runs headless with a fresh profile per conversion (two runs
//! sharing one fail silently), macros disabled in that profile, no network
//! namespace where the kernel allows one, a timeout, and is killed (its
//! whole process group) on timeout or cancel.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Settings for rendering a deck (house style rule 7: settings apart from
/// state, with their defaults as constants).
#[derive(Debug, Clone)]
pub struct SlideSettings {
    /// Slide images are exactly this wide (aspect kept).
    pub width: u32,
    pub thumb_width: u32,
    /// More pages than this is an error, not a long job.
    pub max_slides: usize,
    /// Cap on the uncompressed size of a zipped deck, checked before
    /// anything is extracted.
    pub max_uncompressed: u64,
    pub convert_timeout: Duration,
}

pub const DEFAULT_WIDTH: u32 = 1920;
pub const DEFAULT_THUMB_WIDTH: u32 = 320;
pub const DEFAULT_MAX_SLIDES: usize = 500;
pub const DEFAULT_MAX_UNCOMPRESSED: u64 = 1 << 30;
pub const DEFAULT_CONVERT_TIMEOUT: Duration = Duration::from_secs(180);
/// Zip entries compressing better than this are treated as a bomb.
const MAX_RATIO: u64 = 200;

impl Default for SlideSettings {
    fn default() -> Self {
        SlideSettings {
            width: DEFAULT_WIDTH,
            thumb_width: DEFAULT_THUMB_WIDTH,
            max_slides: DEFAULT_MAX_SLIDES,
            max_uncompressed: DEFAULT_MAX_UNCOMPRESSED,
            convert_timeout: DEFAULT_CONVERT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeckKind {
    Pptx,
    Ppt,
    Odp,
    Pdf,
}

/// What a deck says about one slide, before rendering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlideText {
    pub title: Option<String>,
    pub body: String,
    pub notes: String,
    /// Auto-advance after this long (pptx `p:transition/@advTm`).
    pub advance_after: Option<Duration>,
}

/// One rendered slide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slide {
    /// Counting from 1.
    pub index: usize,
    /// File names relative to the slides directory.
    pub image: String,
    pub thumbnail: String,
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub body: String,
    pub notes: String,
    /// Seconds from the start of the recording, when known.
    pub start: Option<f64>,
    pub end: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlideSet {
    pub deck: String,
    pub kind: DeckKind,
    pub slides: Vec<Slide>,
    /// Where the times came from: "slide-times", "auto-advance" or none.
    pub timing: Option<String>,
}

/// A rendered slide's files, in memory until the caller stores them.
pub struct SlideFiles {
    pub png: Vec<u8>,
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// One entry of `--slide-times`: slide `slide` (from 1) shows from `at` s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlideTime {
    pub slide: usize,
    pub at: f64,
}

fn bad(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::BadDeck {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Which kind of deck this is, from its bytes (the extension only breaks a
/// tie between formats that share a container). Encrypted decks are refused
/// here.
pub fn sniff(path: &Path) -> Result<DeckKind> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if n >= 5 && &head[..5] == b"%PDF-" {
        return Ok(DeckKind::Pdf);
    }
    if n >= 4 && &head[..4] == b"PK\x03\x04" {
        return Ok(if ext == "odp" {
            DeckKind::Odp
        } else {
            DeckKind::Pptx
        });
    }
    if n == 8 && head == [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1] {
        // An OLE compound file: a legacy .ppt, or an encrypted OOXML deck
        // (which Office wraps in one, with an "EncryptedPackage" stream).
        let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
        let marker: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
            return Err(bad(
                path,
                "the deck is password-protected (encrypted); save it without a password",
            ));
        }
        if ext == "ppt" {
            return Ok(DeckKind::Ppt);
        }
        return Err(bad(path, "an OLE file that is not a .ppt deck"));
    }
    Err(bad(
        path,
        "not a PowerPoint (.pptx/.ppt), OpenDocument (.odp) or PDF deck",
    ))
}

/// Open a zipped deck after checking, from its central directory alone,
/// that it is not a zip bomb, not encrypted and not absurdly large.
fn open_zip(path: &Path, settings: &SlideSettings) -> Result<zip::ZipArchive<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(path, format!("corrupt zip container: {e}")))?;
    if zip.len() > 100_000 {
        return Err(bad(
            path,
            format!("{} entries in the zip container", zip.len()),
        ));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| bad(path, format!("corrupt zip entry {i}: {e}")))?;
        if entry.encrypted() {
            return Err(bad(
                path,
                "the deck is password-protected (encrypted zip entries)",
            ));
        }
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        if size > 1 << 20 && size / packed > MAX_RATIO {
            return Err(bad(
                path,
                format!(
                    "{} expands {}x ({} bytes): refusing a zip bomb",
                    entry.name().map(|n| n.into_owned()).unwrap_or_default(),
                    size / packed,
                    size
                ),
            ));
        }
        total = total.saturating_add(size);
    }
    if total > settings.max_uncompressed {
        return Err(bad(
            path,
            format!(
                "uncompressed size {total} bytes is over the {} byte limit",
                settings.max_uncompressed
            ),
        ));
    }
    Ok(zip)
}

/// A zip entry as text, reading at most `cap` bytes (sizes in the central
/// directory can lie).
fn zip_text(zip: &mut zip::ZipArchive<std::fs::File>, name: &str, cap: u64) -> Option<String> {
    let entry = zip.by_name(name).ok()?;
    let mut s = String::new();
    entry.take(cap).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Titles, body text, notes and auto-advance times of a .pptx, in slide order.
pub fn pptx_text(path: &Path, settings: &SlideSettings) -> Result<Vec<SlideText>> {
    let mut zip = open_zip(path, settings)?;
    let cap = settings.max_uncompressed;
    let presentation = zip_text(&mut zip, "ppt/presentation.xml", cap)
        .ok_or_else(|| bad(path, "no ppt/presentation.xml: not a PowerPoint deck"))?;
    let rels = xml::relationships(
        &zip_text(&mut zip, "ppt/_rels/presentation.xml.rels", cap).unwrap_or_default(),
    );
    let order = xml::slide_ids(&presentation);
    let mut out = Vec::new();
    for rid in order {
        let Some((_, target)) = rels.get(&rid) else {
            continue;
        };
        let slide_path = format!(
            "ppt/{}",
            target.trim_start_matches('/').trim_start_matches("ppt/")
        );
        let Some(slide_xml) = zip_text(&mut zip, &slide_path, cap) else {
            return Err(bad(path, format!("{slide_path} is missing")));
        };
        let mut text = xml::slide_text(&slide_xml);
        // Notes hang off the slide's own relationships.
        let (dir, file) = slide_path.rsplit_once('/').unwrap_or(("", &slide_path));
        let slide_rels = xml::relationships(
            &zip_text(&mut zip, &format!("{dir}/_rels/{file}.rels"), cap).unwrap_or_default(),
        );
        if let Some((_, notes_target)) = slide_rels
            .values()
            .find(|(kind, _)| kind.ends_with("/notesSlide"))
        {
            let notes_path = resolve(dir, notes_target);
            if let Some(notes_xml) = zip_text(&mut zip, &notes_path, cap) {
                text.notes = xml::notes_text(&notes_xml);
            }
        }
        out.push(text);
    }
    Ok(out)
}

/// Titles, body text and notes of an .odp, in page order.
pub fn odp_text(path: &Path, settings: &SlideSettings) -> Result<Vec<SlideText>> {
    let mut zip = open_zip(path, settings)?;
    let content = zip_text(&mut zip, "content.xml", settings.max_uncompressed)
        .ok_or_else(|| bad(path, "no content.xml: not an OpenDocument presentation"))?;
    Ok(xml::odp_pages(&content))
}

/// `target` relative to the directory `dir` inside the zip.
fn resolve(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in target.split('/') {
        match seg {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Convert an office deck to PDF with LibreOffice; returns the PDF's bytes.
pub fn office_to_pdf(
    deck: &Path,
    settings: &SlideSettings,
    cancel: &AtomicBool,
) -> Result<Vec<u8>> {
    let soffice = ["soffice", "libreoffice"]
        .into_iter()
        .find(|name| which(name))
        .ok_or(EngineError::MissingTool {
            tool: "soffice",
            purpose: "converting office decks (Debian: libreoffice-impress-nogui)",
        })?;
    // The scratch directory names this process, so whoever looks for a
    // stray converter can find it by its command line.
    let work = tempfile::Builder::new()
        .prefix(&format!("strata-soffice-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| EngineError::Output(format!("scratch directory: {e}")))?;
    let profile = work.path().join("profile");
    write_profile(&profile)?;
    // LibreOffice names its output after the input: copy under a plain name.
    let ext = deck.extension().and_then(|e| e.to_str()).unwrap_or("pptx");
    let input = work.path().join(format!("deck.{ext}"));
    std::fs::copy(deck, &input).map_err(|e| bad(deck, format!("cannot read: {e}")))?;
    let out_dir = work.path().join("out");
    let mut args: Vec<String> = vec![
        "--headless".into(),
        "--norestore".into(),
        "--nologo".into(),
        "--nodefault".into(),
        "--nolockcheck".into(),
        format!("-env:UserInstallation=file://{}", profile.display()),
        "--convert-to".into(),
        "pdf:impress_pdf_Export".into(),
        "--outdir".into(),
        out_dir.display().to_string(),
        input.display().to_string(),
    ];
    // No network for the converter where the kernel lets us have a private
    // namespace (root, or unprivileged user namespaces).
    // Asked once per process: the answer does not change between decks.
    static ISOLATION: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let isolated = *ISOLATION.get_or_init(|| {
        Command::new("unshare")
            .args(["--net", "--map-root-user", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut cmd = if isolated {
        let mut c = Command::new("unshare");
        args.insert(0, soffice.into());
        c.args(["--net", "--map-root-user"]);
        c
    } else {
        Command::new(soffice)
    };
    cmd.args(&args)
        .env("HOME", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a kill takes its helpers too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| EngineError::MissingTool {
        tool: "soffice",
        purpose: if e.kind() == std::io::ErrorKind::NotFound {
            "converting office decks (Debian: libreoffice-impress-nogui)"
        } else {
            "converting office decks (it would not start)"
        },
    })?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| EngineError::Output(e.to_string()))?
        {
            break status;
        }
        let stop = if cancel.load(Ordering::Relaxed) {
            Some(EngineError::Cancelled)
        } else if started.elapsed() > settings.convert_timeout {
            Some(bad(
                deck,
                format!(
                    "LibreOffice did not finish converting within {:.2} s",
                    settings.convert_timeout.as_secs_f64()
                ),
            ))
        } else {
            None
        };
        if let Some(err) = stop {
            // SAFETY: kill(2) on the child's process group; no memory involved.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let pdf = out_dir.join("deck.pdf");
    match std::fs::read(&pdf) {
        Ok(bytes) if status.success() && !bytes.is_empty() => Ok(bytes),
        // LibreOffice exits 0 and writes nothing when it cannot open a file.
        _ => Err(bad(
            deck,
            format!(
                "LibreOffice could not open or convert it{}",
                stderr
                    .lines()
                    .find(|l| l.contains("Error") || l.contains("error"))
                    .map(|l| format!(" ({})", l.trim()))
                    .unwrap_or_default()
            ),
        )),
    }
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// A fresh LibreOffice profile with macros off.
fn write_profile(profile: &Path) -> Result<()> {
    let user = profile.join("user");
    std::fs::create_dir_all(&user).map_err(|e| EngineError::Output(format!("profile: {e}")))?;
    let xcu = r#"<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"#;
    std::fs::write(user.join("registrymodifications.xcu"), xcu)
        .map_err(|e| EngineError::Output(format!("profile: {e}")))
}

/// Rasterise every page of `pdf` at exactly `settings.width` pixels wide,
/// pages in parallel.
pub fn rasterise(deck: &Path, pdf: Vec<u8>, settings: &SlideSettings) -> Result<Vec<SlideFiles>> {
    let data = Arc::new(pdf);
    let pages = {
        let doc = hayro::hayro_syntax::Pdf::new(data.clone())
            .map_err(|e| bad(deck, format!("not a readable PDF: {e:?}")))?;
        doc.pages().len()
    };
    if pages == 0 {
        return Err(bad(deck, "the deck has no pages"));
    }
    if pages > settings.max_slides {
        return Err(bad(
            deck,
            format!(
                "{pages} slides is over the limit of {}",
                settings.max_slides
            ),
        ));
    }
    (0..pages)
        .into_par_iter()
        .map_init(
            // Each worker thread parses its own copy: hayro's documents and
            // caches are not shared across threads.
            || hayro::hayro_syntax::Pdf::new(data.clone()).ok(),
            |doc, i| {
                let doc = doc
                    .as_ref()
                    .ok_or_else(|| bad(deck, "PDF no longer parses"))?;
                render_page(&doc.pages()[i], settings)
                    .map_err(|e| bad(deck, format!("slide {}: {e}", i + 1)))
            },
        )
        .collect()
}

fn render_page(
    page: &hayro::hayro_syntax::page::Page<'_>,
    settings: &SlideSettings,
) -> std::result::Result<SlideFiles, String> {
    use hayro::hayro_interpret::util::TransformExt;
    use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};

    let (pw, ph) = page.render_dimensions();
    if !(pw > 0.0 && ph > 0.0) {
        return Err("page has no size".into());
    }
    let width = settings.width;
    // Even heights keep the slide video's 4:2:0 encoders happy.
    let height =
        (((f64::from(ph) / f64::from(pw) * f64::from(width)) / 2.0).round() as u32 * 2).max(2);
    if width > u32::from(u16::MAX) || height > u32::from(u16::MAX) {
        return Err(format!("{width}x{height} is too large to render"));
    }
    let mut ctx = RenderContext::new(width as u16, height as u16);
    let transform = hayro::kurbo::Affine::scale_non_uniform(
        f64::from(width) / f64::from(pw),
        f64::from(height) / f64::from(ph),
    ) * page.initial_transform(true).to_kurbo();
    let cache = hayro::RenderCache::new();
    hayro::render_into(
        page,
        &cache,
        &hayro::hayro_interpret::InterpreterSettings::default(),
        &hayro::RenderSettings::default(),
        &mut ctx,
        transform,
    );
    ctx.flush();
    let mut pixmap = Pixmap::new(width as u16, height as u16);
    ctx.render_with(
        &mut pixmap,
        &mut Resources::default(),
        RasterizerSettings {
            target_init: TargetInit::Clear(hayro::vello_cpu::color::palette::css::WHITE),
            ..Default::default()
        },
    );
    // Opaque white background: premultiplied RGBA equals straight RGBA.
    let image = image::RgbaImage::from_raw(width, height, pixmap.data_as_u8_slice().to_vec())
        .ok_or("pixmap size")?;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("PNG: {e}"))?;
    let tw = settings.thumb_width;
    let th = ((f64::from(height) * f64::from(tw) / f64::from(width)).round() as u32).max(1);
    let thumb = image::imageops::resize(&image, tw, th, image::imageops::FilterType::Triangle);
    let rgb = image::DynamicImage::ImageRgba8(thumb).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&rgb)
        .map_err(|e| format!("JPEG: {e}"))?;
    Ok(SlideFiles {
        png,
        jpeg,
        width,
        height,
    })
}

/// Slide start/end times from `--slide-times` (or auto-advance), clipped to
/// `duration` when the recording's length is known.
pub fn timeline(
    slides: usize,
    times: &[SlideTime],
    duration: Option<f64>,
) -> std::result::Result<Vec<(f64, f64)>, String> {
    let mut last = f64::NEG_INFINITY;
    for t in times {
        if t.slide == 0 || t.slide > slides {
            return Err(format!(
                "slide {} does not exist (the deck has {slides})",
                t.slide
            ));
        }
        if !(t.at.is_finite() && t.at >= 0.0) || t.at < last {
            return Err(format!(
                "time {} for slide {} is negative or out of order",
                t.at, t.slide
            ));
        }
        last = t.at;
    }
    let end = duration.unwrap_or(last.max(0.0));
    let mut shown: Vec<(usize, f64)> = times.iter().map(|t| (t.slide - 1, t.at)).collect();
    shown.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut spans = vec![(f64::NAN, f64::NAN); slides];
    for (k, &(slide, at)) in shown.iter().enumerate() {
        let until = shown.get(k + 1).map_or(end, |n| n.1);
        // A slide shown twice keeps its first showing in slides.json.
        if spans[slide].0.is_nan() {
            spans[slide] = (at, until.max(at));
        }
    }
    Ok(spans)
}

/// Times from the deck's auto-advance settings, when every slide but the
/// last has one.
pub fn auto_advance(text: &[SlideText]) -> Option<Vec<SlideTime>> {
    if text.len() < 2
        || text[..text.len() - 1]
            .iter()
            .any(|t| t.advance_after.is_none())
    {
        return None;
    }
    let mut at = 0.0;
    Some(
        text.iter()
            .enumerate()
            .map(|(i, t)| {
                let s = SlideTime { slide: i + 1, at };
                at += t.advance_after.map_or(0.0, |d| d.as_secs_f64());
                s
            })
            .collect(),
    )
}

/// Everything `render` made: the set (for slides.json) and the files.
pub struct Rendered {
    pub set: SlideSet,
    pub files: Vec<SlideFiles>,
}

/// Render `deck`: text, images, thumbnails and (when `times` or the deck's
/// auto-advance give them) a timeline clipped to `duration`.
pub fn render(
    deck: &Path,
    times: Option<&[SlideTime]>,
    duration: Option<f64>,
    settings: &SlideSettings,
    cancel: &AtomicBool,
) -> Result<Rendered> {
    let kind = sniff(deck)?;
    let text = match kind {
        DeckKind::Pptx => pptx_text(deck, settings)?,
        DeckKind::Odp => odp_text(deck, settings)?,
        DeckKind::Ppt | DeckKind::Pdf => Vec::new(),
    };
    // Refuse an oversized deck before spending minutes converting it.
    if text.len() > settings.max_slides {
        return Err(bad(
            deck,
            format!(
                "{} slides is over the limit of {}",
                text.len(),
                settings.max_slides
            ),
        ));
    }
    let pdf = match kind {
        DeckKind::Pdf => std::fs::read(deck).map_err(|e| bad(deck, format!("cannot read: {e}")))?,
        _ => office_to_pdf(deck, settings, cancel)?,
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(EngineError::Cancelled);
    }
    let files = rasterise(deck, pdf, settings)?;
    let from_deck = auto_advance(&text);
    let (timing, times) = match (times, from_deck) {
        (Some(t), _) => (Some("slide-times"), Some(t.to_vec())),
        (None, Some(t)) => (Some("auto-advance"), Some(t)),
        (None, None) => (None, None),
    };
    let spans = match &times {
        Some(t) => Some(timeline(files.len(), t, duration).map_err(|e| bad(deck, e))?),
        None => None,
    };
    let slides = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = text.get(i).cloned().unwrap_or_default();
            let span = spans.as_ref().map(|s| s[i]).filter(|s| !s.0.is_nan());
            Slide {
                index: i + 1,
                image: format!("slide_{:03}.png", i + 1),
                thumbnail: format!("thumb_{:03}.jpg", i + 1),
                width: f.width,
                height: f.height,
                title: t.title,
                body: t.body,
                notes: t.notes,
                start: span.map(|s| s.0),
                end: span.map(|s| s.1),
            }
        })
        .collect();
    Ok(Rendered {
        set: SlideSet {
            deck: deck
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind,
            slides,
            timing: timing.map(String::from),
        },
        files,
    })
}

/// WebVTT metadata cues, one per shown slide, payload JSON (index, image).
pub fn vtt(set: &SlideSet) -> Option<String> {
    cues(set, |s| {
        serde_json::json!({"slide": s.index, "image": s.image, "thumbnail": s.thumbnail})
            .to_string()
    })
}

/// WebVTT chapters from the slide titles.
pub fn chapters(set: &SlideSet) -> Option<String> {
    cues(set, |s| {
        s.title
            .clone()
            .unwrap_or_else(|| format!("Slide {}", s.index))
    })
}

fn cues(set: &SlideSet, payload: impl Fn(&Slide) -> String) -> Option<String> {
    let mut shown: Vec<&Slide> = set.slides.iter().filter(|s| s.start.is_some()).collect();
    if shown.is_empty() {
        return None;
    }
    shown.sort_by(|a, b| a.start.unwrap_or(0.0).total_cmp(&b.start.unwrap_or(0.0)));
    let mut out = String::from("WEBVTT\n");
    for s in shown {
        let (start, end) = (s.start.unwrap_or(0.0), s.end.unwrap_or(0.0));
        out += &format!(
            "\nslide-{}\n{} --> {}\n{}\n",
            s.index,
            vtt_time(start),
            vtt_time(end.max(start)),
            payload(s).replace("-->", "->")
        );
    }
    Some(out)
}

fn vtt_time(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Where the deck text is read from: small, streaming XML scans (quick-xml).
mod xml {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use std::collections::HashMap;
    use std::time::Duration;

    use super::SlideText;

    fn local(name: &[u8]) -> &[u8] {
        name.rsplit(|&b| b == b':').next().unwrap_or(name)
    }

    fn attr(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key || local(a.key.as_ref()) == key)
            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    }

    /// r:id of each `p:sldId`, in presentation order.
    pub fn slide_ids(xml: &str) -> Vec<String> {
        let mut r = Reader::from_str(xml);
        let mut ids = Vec::new();
        loop {
            match r.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == b"p:sldId" => {
                    if let Some(id) = attr(&e, b"r:id") {
                        ids.push(id);
                    }
                }
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        ids
    }

    pub fn relationships(xml: &str) -> HashMap<String, (String, String)> {
        let mut r = Reader::from_str(xml);
        let mut map = HashMap::new();
        loop {
            match r.read_event() {
                Ok(Event::Start(e) | Event::Empty(e))
                    if local(e.name().as_ref()) == b"Relationship" =>
                {
                    if let (Some(id), Some(kind), Some(target)) =
                        (attr(&e, b"Id"), attr(&e, b"Type"), attr(&e, b"Target"))
                    {
                        map.insert(id, (kind, target));
                    }
                }
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        map
    }

    /// Text of a slide: the title placeholder apart from the rest; slide
    /// numbers, dates and footers left out; table cells tab-separated.
    pub fn slide_text(xml: &str) -> SlideText {
        let shapes = shapes(xml, &["sldNum", "dt", "ftr"]);
        let mut t = SlideText::default();
        let mut body = Vec::new();
        for (kind, text) in shapes {
            if matches!(kind.as_deref(), Some("title" | "ctrTitle")) && t.title.is_none() {
                t.title = Some(text.replace('\n', " ")).filter(|s| !s.is_empty());
            } else if !text.is_empty() {
                body.push(text);
            }
        }
        t.body = body.join("\n");
        t.advance_after = advance_time(xml);
        t
    }

    /// Speaker notes: the body placeholder of a notes slide.
    pub fn notes_text(xml: &str) -> String {
        shapes(xml, &[])
            .into_iter()
            .filter(|(kind, _)| kind.as_deref() == Some("body"))
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// (placeholder type, text) of each shape or graphic frame, skipping
    /// the placeholder types in `skip`.
    fn shapes(xml: &str, skip: &[&str]) -> Vec<(Option<String>, String)> {
        let mut r = Reader::from_str(xml);
        let mut out = Vec::new();
        let mut depth = 0usize; // inside p:sp / p:graphicFrame
        let mut kind: Option<String> = None;
        let mut paragraphs: Vec<String> = Vec::new();
        let mut para = String::new();
        let mut in_text = false;
        let mut cells: Vec<String> = Vec::new();
        let mut rows: Vec<String> = Vec::new();
        let mut cell_start = 0usize;
        loop {
            match r.read_event() {
                Ok(Event::Start(e)) => match e.name().as_ref() {
                    b"p:sp" | b"p:graphicFrame" => {
                        depth += 1;
                        if depth == 1 {
                            kind = None;
                            paragraphs.clear();
                        }
                    }
                    b"a:t" if depth > 0 => in_text = true,
                    b"a:tr" => cells.clear(),
                    b"a:tc" => cell_start = paragraphs.len(),
                    _ => {}
                },
                Ok(Event::Empty(e)) => match e.name().as_ref() {
                    b"p:ph" if depth > 0 => {
                        kind = Some(attr(&e, b"type").unwrap_or_else(|| "body".into()));
                    }
                    b"a:br" if depth > 0 => para.push('\n'),
                    _ => {}
                },
                Ok(Event::Text(t)) if in_text => {
                    if let Ok(s) = t.unescape() {
                        para.push_str(&s);
                    }
                }
                Ok(Event::End(e)) => match e.name().as_ref() {
                    b"a:t" => in_text = false,
                    b"a:p" if depth > 0 => {
                        let p = std::mem::take(&mut para).trim().to_string();
                        if !p.is_empty() {
                            paragraphs.push(p);
                        }
                    }
                    b"a:tc" => {
                        let start = cell_start.min(paragraphs.len());
                        cells.push(paragraphs.drain(start..).collect::<Vec<_>>().join(" "));
                    }
                    b"a:tr" => rows.push(cells.join("\t")),
                    b"a:tbl" => paragraphs.append(&mut rows),
                    b"p:sp" | b"p:graphicFrame" => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            if !kind.as_deref().is_some_and(|k| skip.contains(&k)) {
                                out.push((kind.take(), paragraphs.join("\n")));
                            }
                            paragraphs.clear();
                        }
                    }
                    _ => {}
                },
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        out
    }

    /// `p:transition/@advTm` (milliseconds), also inside mc:AlternateContent.
    fn advance_time(xml: &str) -> Option<Duration> {
        let mut r = Reader::from_str(xml);
        loop {
            match r.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == b"p:transition" => {
                    if let Some(ms) = attr(&e, b"advTm").and_then(|v| v.parse::<u64>().ok()) {
                        return Some(Duration::from_millis(ms));
                    }
                }
                Ok(Event::Eof) | Err(_) => return None,
                _ => {}
            }
        }
    }

    /// Pages of an ODF presentation: the title frame, other text, notes.
    pub fn odp_pages(xml: &str) -> Vec<SlideText> {
        let mut r = Reader::from_str(xml);
        let mut pages = Vec::new();
        let mut page: Option<SlideText> = None;
        let mut class: Option<String> = None;
        let mut in_notes = false;
        let mut para = String::new();
        let mut in_para = 0usize;
        let mut body: Vec<String> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        loop {
            match r.read_event() {
                Ok(Event::Start(e)) => match e.name().as_ref() {
                    b"draw:page" => {
                        page = Some(SlideText::default());
                        body.clear();
                        notes.clear();
                    }
                    b"presentation:notes" => in_notes = true,
                    b"draw:frame" => class = attr(&e, b"presentation:class"),
                    b"text:p" | b"text:h" => in_para += 1,
                    _ => {}
                },
                Ok(Event::Text(t)) if in_para > 0 => {
                    if let Ok(s) = t.unescape() {
                        para.push_str(&s);
                    }
                }
                Ok(Event::End(e)) => match e.name().as_ref() {
                    b"text:p" | b"text:h" => {
                        in_para = in_para.saturating_sub(1);
                        let p = std::mem::take(&mut para).trim().to_string();
                        if p.is_empty() {
                            continue;
                        }
                        match (&mut page, in_notes, class.as_deref()) {
                            (
                                Some(_),
                                _,
                                Some("page-number" | "footer" | "date-time" | "header"),
                            ) => {}
                            (Some(_), true, _) => notes.push(p),
                            (Some(pg), false, Some("title")) if pg.title.is_none() => {
                                pg.title = Some(p)
                            }
                            (Some(_), false, _) => body.push(p),
                            _ => {}
                        }
                    }
                    b"draw:frame" => class = None,
                    b"presentation:notes" => in_notes = false,
                    b"draw:page" => {
                        if let Some(mut pg) = page.take() {
                            pg.body = body.join("\n");
                            pg.notes = notes.join("\n");
                            pages.push(pg);
                        }
                    }
                    _ => {}
                },
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        pages
    }
}

/// Width of the slide stream's video, and its bit rate: slides are still
/// pictures, so a low rate keeps text sharp.
pub const STREAM_WIDTH: u32 = 1280;
pub const STREAM_KBPS: u32 = 300;

/// The slide stream as a plain video file: each slide from its start time,
/// at a low frame rate that puts a frame on every segment boundary (1 fps,
/// or 2 fps for half-second segment lengths), until `duration`. Before the
/// first timed slide, the first slide shows.
pub fn stream_video(
    set: &SlideSet,
    files: &[SlideFiles],
    duration: f64,
    segment_seconds: f64,
    out: &Path,
) -> Result<(u32, u32, Vec<Duration>)> {
    use gst::prelude::*;

    let first = set
        .slides
        .first()
        .ok_or_else(|| EngineError::InvalidJob("no slides".into()))?;
    let (w, h) = (
        STREAM_WIDTH,
        ((first.height as f64 * STREAM_WIDTH as f64 / first.width as f64) / 2.0).round() as u32 * 2,
    );
    let fps: u32 = if (segment_seconds - segment_seconds.round()).abs() < 1e-9 {
        1
    } else {
        2
    };
    // A slide's picture is made when it comes up (decoded from its PNG and
    // scaled); frames share its memory until the next change. Only one
    // picture is held at a time, however long the deck.
    let picture = |i: usize| -> Result<gst::Buffer> {
        let img = image::load_from_memory_with_format(&files[i].png, image::ImageFormat::Png)
            .map_err(|e| EngineError::InvalidJob(format!("slide {} PNG: {e}", i + 1)))?
            .to_rgba8();
        let small = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
        Ok(gst::Buffer::from_mut_slice(small.into_raw()))
    };
    let mut changes: Vec<(f64, usize)> = set
        .slides
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.start.map(|t| (t, i)))
        .collect();
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));

    let pipeline = gst::Pipeline::with_name("slide-stream");
    let src = gst_app::AppSrc::builder()
        .caps(
            &gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, w, h)
                .fps(gst::Fraction::new(fps as i32, 1))
                .build()
                .map_err(|e| EngineError::InvalidJob(format!("slide video caps: {e}")))?
                .to_caps()
                .map_err(|e| EngineError::InvalidJob(format!("slide video caps: {e}")))?,
        )
        .format(gst::Format::Time)
        .block(true)
        .build();
    let chain = [
        src.clone().upcast::<gst::Element>(),
        crate::exec::make("videoconvert", None)?,
        crate::exec::make("x264enc", None)?,
        crate::exec::make("h264parse", None)?,
        crate::exec::make("mp4mux", None)?,
        crate::exec::make("filesink", None)?,
    ];
    // Near-lossless intermediate: the real encode happens in the ladder.
    chain[2].set_property_from_str("speed-preset", "ultrafast");
    chain[2].set_property("quantizer", 10u32);
    chain[2].set_property_from_str("pass", "qual");
    chain[5].set_property("location", out.to_string_lossy().as_ref());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    pipeline.set_state(gst::State::Playing)?;
    let frames = (duration * f64::from(fps)).ceil().max(1.0) as u64;
    let step = gst::ClockTime::SECOND / u64::from(fps);
    let mut current = 0usize;
    let mut shown = picture(current)?;
    let mut next_change = 0usize;
    for n in 0..frames {
        let t = n as f64 / f64::from(fps);
        let before = current;
        while next_change < changes.len() && changes[next_change].0 <= t + 1e-9 {
            current = changes[next_change].1;
            next_change += 1;
        }
        if current != before {
            shown = picture(current)?;
        }
        let mut buf = shown.copy();
        {
            let b = buf.get_mut().expect("a fresh copy is writable");
            b.set_pts(step * n);
            // The last frame ends with the recording, not a whole step later.
            let left = gst::ClockTime::from_nseconds(((duration - t).max(0.0) * 1e9) as u64);
            b.set_duration(step.min(left).max(gst::ClockTime::from_mseconds(1)));
        }
        if src.push_buffer(buf).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    crate::exec::run_to_eos(&pipeline, out)?;
    // Keyframes at the frames where slides change.
    let keyframes = changes
        .iter()
        .map(|(t, _)| Duration::from_secs_f64((t * f64::from(fps)).ceil() / f64::from(fps)))
        .filter(|d| !d.is_zero())
        .collect();
    Ok((w, h, keyframes))
}

/// The plan for encoding the slide stream: one low-rate rung, with a
/// keyframe at every slide change and every segment boundary.
pub fn stream_plan(
    video: &Path,
    size: (u32, u32),
    keyframes: Vec<Duration>,
    duration: f64,
    segment_duration: Duration,
    format: crate::plan::Format,
    caps: &crate::caps::Capabilities,
) -> Result<crate::plan::Plan> {
    use crate::plan::{FrameMemory, Plan, VideoPlan, VideoRendition};
    let entry = caps
        .best(crate::caps::ElementKind::VideoEncoder, "h264")
        .and_then(|e| crate::encoders::entry(&e.element))
        .ok_or(EngineError::MissingElement {
            element: "x264enc".into(),
            purpose: "the slide stream",
        })?;
    let gop = (segment_duration.as_secs_f64() * 2.0 * 2.0).ceil() as u32;
    let mut encoder = crate::encoders::configure(entry, STREAM_KBPS, Some(gop.max(2)));
    if encoder.element == "x264enc" {
        // At one frame a second x264's lookahead holds many seconds of
        // frames, and GStreamer drops a forced keyframe while the previous
        // one is still inside the encoder: encode without delay.
        encoder
            .properties
            .retain(|(k, _)| k != "bframes" && k != "b-adapt");
        encoder.properties.push(("bframes".into(), "0".into()));
        encoder
            .properties
            .push(("tune".into(), "zerolatency".into()));
    }
    Ok(Plan {
        input: video.to_path_buf(),
        format,
        segment_duration,
        duration: Duration::from_secs_f64(duration),
        video: Some(VideoPlan {
            decoder: None,
            memory: FrameMemory::System,
            deinterlace: false,
            output_fps: None,
            queue_frames: crate::plan::DEFAULT_QUEUE_FRAMES,
            renditions: vec![VideoRendition {
                id: "slides".into(),
                width: size.0,
                height: size.1,
                bitrate_kbps: STREAM_KBPS,
                scaler: "videoscale".into(),
                encoder,
                vendor: None,
            }],
            keyframes_at: keyframes,
        }),
        audio: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slide_xml_text() {
        let xml = r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Fourier &amp; friends</a:t></a:r></a:p></p:txBody></p:sp>
          <p:sp><p:nvSpPr><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>First</a:t></a:r></a:p><a:p><a:r><a:t>Second</a:t></a:r></a:p></p:txBody></p:sp>
          <p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>x</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>y</a:t></a:r></a:p></a:txBody></a:tc></a:tr><a:tr><a:tc><a:txBody><a:p><a:r><a:t>u</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>v</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>7</a:t></a:r></a:p></p:txBody></p:sp>
        </p:spTree></p:cSld><p:transition advTm="4500"/></p:sld>"#;
        let t = xml::slide_text(xml);
        assert_eq!(t.title.as_deref(), Some("Fourier & friends"));
        assert_eq!(t.body, "First\nSecond\nx\ty\nu\tv");
        assert_eq!(t.advance_after, Some(Duration::from_millis(4500)));
    }

    #[test]
    fn timelines() {
        let t = [
            SlideTime { slide: 1, at: 0.0 },
            SlideTime { slide: 2, at: 10.0 },
            SlideTime { slide: 3, at: 25.5 },
        ];
        assert_eq!(
            timeline(3, &t, Some(40.0)).unwrap(),
            vec![(0.0, 10.0), (10.0, 25.5), (25.5, 40.0)]
        );
        assert!(timeline(2, &t, None).is_err(), "slide 3 of 2");
        let backwards = [
            SlideTime { slide: 1, at: 5.0 },
            SlideTime { slide: 2, at: 1.0 },
        ];
        assert!(timeline(2, &backwards, None).is_err());
        // Auto-advance: cumulative.
        let text: Vec<SlideText> = [Some(3000), Some(2000), None]
            .into_iter()
            .map(|ms| SlideText {
                advance_after: ms.map(Duration::from_millis),
                ..SlideText::default()
            })
            .collect();
        let times = auto_advance(&text).unwrap();
        assert_eq!(
            times.iter().map(|t| t.at).collect::<Vec<_>>(),
            vec![0.0, 3.0, 5.0]
        );
        let gap = [text[0].clone(), text[2].clone(), text[1].clone()];
        assert!(auto_advance(&gap).is_none(), "the middle slide has no time");
    }

    #[test]
    fn vtt_cues() {
        let slide = |i: usize, start: f64, end: f64| Slide {
            index: i,
            image: format!("slide_{i:03}.png"),
            thumbnail: format!("thumb_{i:03}.jpg"),
            width: 1920,
            height: 1080,
            title: Some(format!("Part {i}")),
            body: String::new(),
            notes: String::new(),
            start: Some(start),
            end: Some(end),
        };
        let set = SlideSet {
            deck: "d.pptx".into(),
            kind: DeckKind::Pptx,
            slides: vec![slide(1, 0.0, 61.5), slide(2, 61.5, 3700.0)],
            timing: Some("slide-times".into()),
        };
        let v = vtt(&set).unwrap();
        assert!(
            v.starts_with("WEBVTT\n\nslide-1\n00:00:00.000 --> 00:01:01.500\n{"),
            "{v}"
        );
        assert!(v.contains("01:01:40.000"));
        assert!(v.contains(r#""image":"slide_002.png""#));
        assert!(chapters(&set).unwrap().contains("\nPart 2\n"));
    }

    #[test]
    fn zip_paths() {
        assert_eq!(
            resolve("ppt/slides", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
    }
}
