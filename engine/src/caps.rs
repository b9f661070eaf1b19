//! `caps`: which decoders, scalers and encoders this machine can run, as
//! plain data.
//!
//! [`Capabilities`] is built once from the GStreamer registry and passed to
//! the planner, so tests can hand the planner any machine they like (house
//! style rule 3). Debian's nvcodec/va/qsv plugins register elements only when
//! working hardware is present, so presence in the registry means usable; a
//! hardware element is still confirmed by a one-frame smoke run before it is
//! trusted, and the result is remembered for the process.
//!
//! ```text
//! smoke encode:  videotestsrc(2 frames) ! videoconvert ! ENCODER ! fakesink
//! smoke decode:  videotestsrc ! videoconvert ! <software encoder> ! parser ! DECODER ! fakesink
//! smoke scale:   videotestsrc ! [upload] ! SCALER ! [download] ! 160x120 ! fakesink
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gst::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementKind {
    VideoDecoder,
    VideoScaler,
    VideoEncoder,
    AudioEncoder,
}

impl ElementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ElementKind::VideoDecoder => "video decoder",
            ElementKind::VideoScaler => "video scaler",
            ElementKind::VideoEncoder => "video encoder",
            ElementKind::AudioEncoder => "audio encoder",
        }
    }
}

/// Who makes the hardware an element drives; `None` in [`ElementCap`] means
/// software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// NVDEC / NVENC / CUDA (nvcodec plugin).
    Nvidia,
    /// VA-API (va plugin).
    Vaapi,
    /// Intel Quick Sync (qsv plugin).
    Qsv,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Nvidia => "nvidia",
            Vendor::Vaapi => "vaapi",
            Vendor::Qsv => "qsv",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementCap {
    pub element: String,
    pub kind: ElementKind,
    /// "h264", "h265", "vp9", "av1", "mpeg2" for codecs; "raw" for scalers;
    /// "aac" for audio.
    pub codec: String,
    /// `None`: software.
    pub vendor: Option<Vendor>,
    /// `Some(true)` once a smoke run worked, `Some(false)` if it failed,
    /// `None` when not tried.
    pub verified: Option<bool>,
    /// Concurrent sessions the device allows for this element, when limited.
    pub sessions: Option<u32>,
}

impl ElementCap {
    pub fn hardware(&self) -> bool {
        self.vendor.is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub elements: Vec<ElementCap>,
}

/// NVENC sessions per device on consumer GPUs (the driver's limit; data-centre
/// cards have none, but nothing in GStreamer says which card this is).
/// Override with `STRATA_GPU_SESSIONS`.
pub const DEFAULT_NVENC_SESSIONS: u32 = 8;

struct Known {
    element: &'static str,
    kind: ElementKind,
    codec: &'static str,
    vendor: Option<Vendor>,
}

const fn k(
    element: &'static str,
    kind: ElementKind,
    codec: &'static str,
    vendor: Option<Vendor>,
) -> Known {
    Known {
        element,
        kind,
        codec,
        vendor,
    }
}

use ElementKind::{AudioEncoder as AE, VideoDecoder as VD, VideoEncoder as VE, VideoScaler as VS};
const NV: Option<Vendor> = Some(Vendor::Nvidia);
const VA: Option<Vendor> = Some(Vendor::Vaapi);
const QSV: Option<Vendor> = Some(Vendor::Qsv);
const SW: Option<Vendor> = None;

/// Elements the planner knows how to drive, in order of preference within
/// each (kind, codec, vendor) (see `encoders::TABLE` for encoder properties).
const KNOWN: &[Known] = &[
    k("nvh264dec", VD, "h264", NV),
    k("nvh265dec", VD, "h265", NV),
    k("nvvp9dec", VD, "vp9", NV),
    k("nvav1dec", VD, "av1", NV),
    k("nvmpeg2videodec", VD, "mpeg2", NV),
    k("vah264dec", VD, "h264", VA),
    k("vah265dec", VD, "h265", VA),
    k("vavp9dec", VD, "vp9", VA),
    k("vaav1dec", VD, "av1", VA),
    k("vampeg2dec", VD, "mpeg2", VA),
    k("qsvh264dec", VD, "h264", QSV),
    k("qsvh265dec", VD, "h265", QSV),
    k("qsvvp9dec", VD, "vp9", QSV),
    k("qsvav1dec", VD, "av1", QSV),
    k("avdec_h264", VD, "h264", SW),
    k("avdec_h265", VD, "h265", SW),
    k("avdec_vp9", VD, "vp9", SW),
    k("vp9dec", VD, "vp9", SW),
    k("dav1ddec", VD, "av1", SW),
    k("avdec_av1", VD, "av1", SW),
    k("avdec_mpeg2video", VD, "mpeg2", SW),
    k("cudaconvertscale", VS, "raw", NV),
    k("cudascale", VS, "raw", NV),
    k("vapostproc", VS, "raw", VA),
    k("videoconvertscale", VS, "raw", SW),
    k("videoscale", VS, "raw", SW),
    k("nvcudah264enc", VE, "h264", NV),
    k("nvh264enc", VE, "h264", NV),
    k("nvcudah265enc", VE, "h265", NV),
    k("nvh265enc", VE, "h265", NV),
    k("vah264enc", VE, "h264", VA),
    k("vah265enc", VE, "h265", VA),
    k("qsvh264enc", VE, "h264", QSV),
    k("qsvh265enc", VE, "h265", QSV),
    k("x264enc", VE, "h264", SW),
    k("openh264enc", VE, "h264", SW),
    k("x265enc", VE, "h265", SW),
    k("avenc_aac", AE, "aac", SW),
    k("voaacenc", AE, "aac", SW),
];

/// Is the GStreamer element `name` registered here? Call after [`crate::init`].
pub fn installed(name: &str) -> bool {
    gst::ElementFactory::find(name).is_some()
}

/// The codec id of a probed stream's caps name ("video/x-h264" → "h264").
pub fn codec_id(caps_name: &str) -> Option<&'static str> {
    Some(match caps_name {
        "video/x-h264" => "h264",
        "video/x-h265" => "h265",
        "video/x-vp9" => "vp9",
        "video/x-av1" => "av1",
        "video/mpeg" | "video/mpeg2" => "mpeg2",
        _ => return None,
    })
}

impl Capabilities {
    /// Scan the GStreamer registry and smoke-test every hardware element
    /// (software ones are trusted). Call after [`crate::init`].
    pub fn detect() -> Self {
        let mut caps = Self::scan();
        caps.verify(|e| e.hardware());
        caps
    }

    /// Scan and smoke-test everything, software included (`strata caps`).
    pub fn detect_all_verified() -> Self {
        let mut caps = Self::scan();
        caps.verify(|_| true);
        caps
    }

    /// The registry's view, nothing run yet.
    pub fn scan() -> Self {
        let sessions = std::env::var("STRATA_GPU_SESSIONS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_NVENC_SESSIONS);
        let mut caps = Self::known_where(|name| gst::ElementFactory::find(name).is_some());
        for e in &mut caps.elements {
            if e.vendor == Some(Vendor::Nvidia) && e.kind == ElementKind::VideoEncoder {
                e.sessions = Some(sessions);
            }
        }
        caps
    }

    /// A capability set made of the named elements, all taken as verified
    /// (for tests and overrides).
    pub fn from_names(names: &[&str]) -> Self {
        let mut caps = Self::known_where(|name| names.contains(&name));
        for e in &mut caps.elements {
            e.verified = Some(true);
        }
        caps
    }

    fn known_where(present: impl Fn(&str) -> bool) -> Self {
        let elements = KNOWN
            .iter()
            .filter(|k| present(k.element))
            .map(|k| ElementCap {
                element: k.element.into(),
                kind: k.kind,
                codec: k.codec.into(),
                vendor: k.vendor,
                verified: None,
                sessions: None,
            })
            .collect();
        Capabilities { elements }
    }

    /// The preferred usable element of `kind` for `codec` from `vendor`
    /// (`None`: software). An element whose smoke run failed is never usable.
    pub fn find(
        &self,
        kind: ElementKind,
        codec: &str,
        vendor: Option<Vendor>,
    ) -> Option<&ElementCap> {
        KNOWN
            .iter()
            .filter(|k| k.kind == kind && k.codec == codec && k.vendor == vendor)
            .find_map(|k| {
                self.elements
                    .iter()
                    .find(|e| e.element == k.element && e.verified != Some(false))
            })
    }

    /// The preferred software element of `kind` for `codec`.
    pub fn best(&self, kind: ElementKind, codec: &str) -> Option<&ElementCap> {
        self.find(kind, codec, None)
    }

    /// The same machine with its hardware encoders taken away: a job on a
    /// worker's CPU slot may still decode on the GPU, but not hold an
    /// encoder session the GPU slots count on.
    pub fn without_gpu_encoders(&self) -> Self {
        Capabilities {
            elements: self
                .elements
                .iter()
                .filter(|e| !(e.kind == ElementKind::VideoEncoder && e.hardware()))
                .cloned()
                .collect(),
        }
    }

    /// How many jobs can encode on the GPU at once: a job's rungs each take
    /// a session (a 4-rung ladder is the default), at least one job.
    pub fn gpu_job_slots(&self, rungs_per_job: u32) -> usize {
        if !self.has_gpu_encoder() {
            return 0;
        }
        let sessions = self
            .elements
            .iter()
            .filter(|e| {
                e.kind == ElementKind::VideoEncoder && e.hardware() && e.verified != Some(false)
            })
            .filter_map(|e| e.sessions)
            .max();
        match sessions {
            Some(n) => (n / rungs_per_job.max(1)).max(1) as usize,
            // Unlimited sessions: the GPU's own throughput is the limit.
            None => 2,
        }
    }

    /// Any usable hardware video encoder?
    pub fn has_gpu_encoder(&self) -> bool {
        self.elements.iter().any(|e| {
            e.kind == ElementKind::VideoEncoder && e.hardware() && e.verified != Some(false)
        })
    }

    /// Smoke-test the elements `which` selects (results cached per process).
    fn verify(&mut self, which: impl Fn(&ElementCap) -> bool) {
        for e in &mut self.elements {
            if !which(e) {
                continue;
            }
            let feeder = FEEDERS.iter().find(|(codec, enc, _)| {
                *codec == e.codec
                    && enc
                        .split_whitespace()
                        .next()
                        .is_some_and(|name| gst::ElementFactory::find(name).is_some())
            });
            if e.kind == ElementKind::VideoDecoder && feeder.is_none() {
                // Nothing here can make a stream to decode: untried.
                continue;
            }
            e.verified = Some(smoke_cached(
                e,
                feeder.map(|(_, enc, parse)| (*enc, *parse)),
            ));
        }
    }
}

/// Software encoders (and parsers) that make the stream a decoder's smoke
/// run decodes, per codec, in order of preference.
const FEEDERS: &[(&str, &str, &str)] = &[
    ("h264", "x264enc", "h264parse"),
    ("h264", "openh264enc", "h264parse"),
    ("h265", "x265enc", "h265parse"),
    ("vp9", "vp9enc deadline=1", "vp9parse"),
];

fn smoke_cached(e: &ElementCap, feeder: Option<(&str, &str)>) -> bool {
    static RESULTS: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let results = RESULTS.get_or_init(Default::default);
    if let Some(ok) = results.lock().unwrap().get(&e.element) {
        return *ok;
    }
    let ok = smoke(e, feeder);
    results.lock().unwrap().insert(e.element.clone(), ok);
    ok
}

/// The gst-launch description of a one-frame smoke run for `e`.
fn smoke_description(e: &ElementCap, feeder: Option<(&str, &str)>) -> Option<String> {
    let video = "videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert";
    let el = &e.element;
    Some(match e.kind {
        ElementKind::VideoEncoder => format!("{video} ! {el} ! fakesink"),
        ElementKind::AudioEncoder => {
            format!("audiotestsrc num-buffers=4 ! audioconvert ! audioresample ! {el} ! fakesink")
        }
        ElementKind::VideoDecoder => {
            let (encoder, parser) = feeder?;
            format!("{video} ! {encoder} ! {parser} ! {el} ! fakesink")
        }
        ElementKind::VideoScaler => {
            let (up, down) = match e.vendor {
                Some(Vendor::Nvidia) => ("cudaupload ! ", " ! cudadownload"),
                _ => ("", ""),
            };
            format!("{video} ! {up}{el}{down} ! video/x-raw,width=160,height=120 ! fakesink")
        }
    })
}

/// Run the smoke pipeline for `e`: true when it reaches EOS within 10 s.
fn smoke(e: &ElementCap, feeder: Option<(&str, &str)>) -> bool {
    let Some(description) = smoke_description(e, feeder) else {
        return false;
    };
    let Ok(pipeline) = gst::parse::launch(&description) else {
        return false;
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let _ = pipeline.set_state(gst::State::Null);
        return false;
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let ok = matches!(
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .map(|m| m.type_()),
        Some(gst::MessageType::Eos)
    );
    let _ = pipeline.set_state(gst::State::Null);
    // Hardware sessions are released asynchronously by some drivers.
    if e.hardware() {
        std::thread::sleep(Duration::from_millis(50));
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_prefers_in_table_order_and_skips_failed() {
        let mut caps = Capabilities::from_names(&["nvh264enc", "nvcudah264enc", "x264enc"]);
        assert_eq!(
            caps.find(ElementKind::VideoEncoder, "h264", Some(Vendor::Nvidia))
                .unwrap()
                .element,
            "nvcudah264enc"
        );
        caps.elements
            .iter_mut()
            .find(|e| e.element == "nvcudah264enc")
            .unwrap()
            .verified = Some(false);
        assert_eq!(
            caps.find(ElementKind::VideoEncoder, "h264", Some(Vendor::Nvidia))
                .unwrap()
                .element,
            "nvh264enc"
        );
        assert_eq!(
            caps.best(ElementKind::VideoEncoder, "h264")
                .unwrap()
                .element,
            "x264enc"
        );
        assert!(caps.has_gpu_encoder());
        assert!(!Capabilities::from_names(&["x264enc", "nvh264dec"]).has_gpu_encoder());
    }

    #[test]
    fn gpu_slots_follow_sessions() {
        assert_eq!(Capabilities::from_names(&["x264enc"]).gpu_job_slots(4), 0);
        let mut nv = Capabilities::from_names(&["nvh264enc", "x264enc", "nvh264dec"]);
        assert_eq!(nv.gpu_job_slots(4), 2, "unlimited sessions");
        let enc = nv
            .elements
            .iter()
            .position(|e| e.element == "nvh264enc")
            .unwrap();
        nv.elements[enc].sessions = Some(8);
        assert_eq!(nv.gpu_job_slots(4), 2);
        nv.elements[enc].sessions = Some(3);
        assert_eq!(nv.gpu_job_slots(4), 1);
        let cpu_only = nv.without_gpu_encoders();
        assert!(!cpu_only.has_gpu_encoder());
        assert!(cpu_only.elements.iter().any(|e| e.element == "nvh264dec"));
    }

    #[test]
    fn codec_ids() {
        assert_eq!(codec_id("video/x-h264"), Some("h264"));
        assert_eq!(codec_id("video/x-h265"), Some("h265"));
        assert_eq!(codec_id("video/x-vp9"), Some("vp9"));
        assert_eq!(codec_id("video/x-theora"), None);
    }
}
