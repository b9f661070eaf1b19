//! `package`: the [`Packager`] takes segments as the pipeline closes them,
//! stores them at once under deterministic names, measures them from their
//! bytes, and at the end writes the media playlists, runs [`crate::verify`]
//! and only then publishes `master.m3u8`.
//!
//! ```text
//! add_init / add_segment ─► inspect ─► store.put(video/<id>/seg_00001.m4s)
//! finish ─► media playlists ─► verify (against the store) ─► master.m3u8
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{PackagerError, Result};
use crate::inspect::{self, InitInfo, SegmentInfo};
use crate::playlist::{AudioRendition, MediaPlaylist, Multivariant, PlaylistSegment, Variant};
use crate::store::{Store, content_type};
use crate::verify;

pub const MASTER: &str = "master.m3u8";
const AUDIO_GROUP: &str = "audio";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentFormat {
    Cmaf,
    Ts,
}

impl SegmentFormat {
    fn extension(self) -> &'static str {
        match self {
            SegmentFormat::Cmaf => "m4s",
            SegmentFormat::Ts => "ts",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RenditionKind {
    Video {
        width: u32,
        height: u32,
        /// Nominal frame rate; `None` (variable) is measured from the samples.
        frame_rate: Option<f64>,
    },
    Audio {
        channels: u32,
        sample_rate: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenditionSpec {
    /// Directory name under `video/` or `audio/`.
    pub id: String,
    pub kind: RenditionKind,
    /// What the encoder was asked for, bit/s.
    pub target_bitrate: u64,
}

impl RenditionSpec {
    pub fn is_video(&self) -> bool {
        matches!(self.kind, RenditionKind::Video { .. })
    }
    pub fn dir(&self) -> String {
        let top = if self.is_video() { "video" } else { "audio" };
        format!("{top}/{}", self.id)
    }
    pub fn playlist_key(&self) -> String {
        format!("{}/index.m3u8", self.dir())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredSegment {
    pub key: String,
    pub size: u64,
    pub info: SegmentInfo,
}

#[derive(Debug)]
pub(crate) struct RenditionState {
    pub spec: RenditionSpec,
    pub init: Option<(String, u64, InitInfo)>,
    pub segments: BTreeMap<u32, StoredSegment>,
    pub playlist: Option<(String, u64)>,
}

impl RenditionState {
    pub fn codec(&self) -> Option<String> {
        self.init
            .as_ref()
            .map(|(_, _, i)| i.codec.clone())
            .or_else(|| self.segments.values().find_map(|s| s.info.codec.clone()))
    }
    pub fn durations(&self) -> Vec<f64> {
        self.segments
            .values()
            .map(|s| s.info.duration.unwrap_or(0.0))
            .collect()
    }
    pub fn total_duration(&self) -> f64 {
        self.durations().iter().sum()
    }
}

/// What was published, for `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub master: String,
    pub format: SegmentFormat,
    pub renditions: Vec<RenditionReport>,
    /// The verification checks that passed before the master was published.
    pub checks: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenditionReport {
    pub id: String,
    #[serde(flatten)]
    pub kind: RenditionKind,
    pub playlist: String,
    pub codec: String,
    pub segments: usize,
    pub duration: f64,
    pub bytes: u64,
    pub target_bitrate: u64,
    pub peak_bitrate: u64,
    pub average_bitrate: u64,
    /// Frame rate as measured from the samples (video only).
    pub measured_frame_rate: Option<f64>,
}

pub struct Packager {
    store: Arc<dyn Store>,
    format: SegmentFormat,
    state: Mutex<Vec<RenditionState>>,
    /// EXT-X-SESSION-DATA for the master: (DATA-ID, URI).
    session_data: Mutex<Vec<(String, String)>>,
}

impl Packager {
    /// Start a job. An existing `master.m3u8` under the store is removed
    /// first: its segments are about to be overwritten, so it must not stay
    /// published if this job fails.
    pub fn new(
        store: Arc<dyn Store>,
        format: SegmentFormat,
        specs: Vec<RenditionSpec>,
    ) -> Result<Self> {
        store.delete(MASTER)?;
        let state = specs
            .into_iter()
            .map(|spec| RenditionState {
                spec,
                init: None,
                segments: BTreeMap::new(),
                playlist: None,
            })
            .collect();
        Ok(Packager {
            store,
            format,
            state: Mutex::new(state),
            session_data: Mutex::new(Vec::new()),
        })
    }

    /// Name a document in the master (EXT-X-SESSION-DATA), e.g. the slides'
    /// `slides/slides.json`; it must already be in the store.
    pub fn add_session_data(&self, data_id: &str, uri: &str) {
        self.session_data
            .lock()
            .unwrap()
            .push((data_id.into(), uri.into()));
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut RenditionState) -> Result<T>) -> Result<T> {
        let mut state = self.state.lock().unwrap();
        let r = state
            .iter_mut()
            .find(|r| r.spec.id == id)
            .ok_or_else(|| PackagerError::UnknownRendition(id.into()))?;
        f(r)
    }

    pub fn add_init(&self, id: &str, data: &[u8]) -> Result<()> {
        let key = self.with(id, |r| Ok(format!("{}/init.mp4", r.spec.dir())))?;
        let info = inspect::mp4_init(&self.store.locate(&key), data)?;
        self.store.put(&key, data, content_type(&key))?;
        self.with(id, |r| {
            r.init = Some((key, data.len() as u64, info));
            Ok(())
        })
    }

    /// Store media segment `index` (from 1) of rendition `id`.
    pub fn add_segment(&self, id: &str, index: u32, data: &[u8]) -> Result<()> {
        let (key, init) = self.with(id, |r| {
            Ok((
                format!(
                    "{}/seg_{index:05}.{}",
                    r.spec.dir(),
                    self.format.extension()
                ),
                r.init.as_ref().map(|(_, _, i)| i.clone()),
            ))
        })?;
        let what = self.store.locate(&key);
        let info = match self.format {
            SegmentFormat::Cmaf => {
                let init = init.ok_or_else(|| PackagerError::Incomplete {
                    rendition: id.into(),
                    reason: "media segment before its init segment".into(),
                })?;
                inspect::mp4_segment(&what, data, &init)?
            }
            SegmentFormat::Ts => inspect::ts_segment(&what, data)?,
        };
        self.store.put(&key, data, content_type(&key))?;
        self.with(id, |r| {
            r.segments.insert(
                index,
                StoredSegment {
                    key,
                    size: data.len() as u64,
                    info,
                },
            );
            Ok(())
        })
    }

    /// Write the media playlists, verify everything against the store and the
    /// input's duration (`expected`, seconds), then publish the master.
    pub fn finish(&self, expected: f64) -> Result<Published> {
        // Every segment must be in the store before playlists name it.
        self.store.flush()?;
        let mut state = self.state.lock().unwrap();
        for r in state.iter_mut() {
            if r.segments.is_empty() {
                return Err(PackagerError::Incomplete {
                    rendition: r.spec.id.clone(),
                    reason: "no segments were produced".into(),
                });
            }
            fill_durations(r);
            let pl = MediaPlaylist {
                segments: r
                    .segments
                    .values()
                    .map(|s| PlaylistSegment {
                        uri: s.key.rsplit('/').next().unwrap_or(&s.key).to_string(),
                        duration: s.info.duration.unwrap_or(0.0),
                    })
                    .collect(),
                map: r.init.as_ref().map(|_| "init.mp4".to_string()),
                target_duration: None,
            };
            let text = pl.render()?;
            let key = r.spec.playlist_key();
            self.store.put(&key, text.as_bytes(), content_type(&key))?;
            r.playlist = Some((key, text.len() as u64));
        }

        self.store.flush()?;
        let checks = verify::verify(self.store.as_ref(), &state, expected)?;

        let reports: Vec<RenditionReport> = state.iter().map(report).collect();
        let mut master = multivariant(&state, &reports, self.format);
        for (id, uri) in self.session_data.lock().unwrap().iter() {
            // The publish gate covers what the master names here too.
            if self.store.size(uri)?.is_none() {
                return Err(PackagerError::Incomplete {
                    rendition: id.clone(),
                    reason: format!("session data {uri} is not in the store"),
                });
            }
            master.session_data.push((id.clone(), uri.clone()));
        }
        let master = master.render()?;
        self.store
            .put(MASTER, master.as_bytes(), content_type(MASTER))?;
        Ok(Published {
            master: self.store.locate(MASTER),
            format: self.format,
            renditions: reports,
            checks,
        })
    }
}

/// Each segment lasts until the next one starts, and the last until the end
/// of its last frame: EXTINF then adds up to the presentation exactly.
fn fill_durations(r: &mut RenditionState) {
    let starts: Vec<f64> = r.segments.values().map(|s| s.info.start).collect();
    let n = starts.len();
    for (i, s) in r.segments.values_mut().enumerate() {
        let end = if i + 1 < n {
            Some(starts[i + 1])
        } else {
            s.info.end
        };
        s.info.duration = end.map(|e| e - s.info.start).filter(|d| *d > 0.0);
    }
}

fn report(r: &RenditionState) -> RenditionReport {
    let durations = r.durations();
    let total: f64 = durations.iter().sum();
    let bytes: u64 = r.segments.values().map(|s| s.size).sum();
    let peak = r
        .segments
        .values()
        .filter_map(|s| {
            s.info
                .duration
                .filter(|d| *d > 0.0)
                .map(|d| s.size as f64 * 8.0 / d)
        })
        .fold(0.0, f64::max);
    let samples: u32 = r.segments.values().map(|s| s.info.samples).sum();
    RenditionReport {
        id: r.spec.id.clone(),
        kind: r.spec.kind.clone(),
        playlist: r.spec.playlist_key(),
        codec: r.codec().unwrap_or_default(),
        segments: r.segments.len(),
        duration: total,
        bytes,
        target_bitrate: r.spec.target_bitrate,
        peak_bitrate: peak.ceil() as u64,
        average_bitrate: if total > 0.0 {
            (bytes as f64 * 8.0 / total).ceil() as u64
        } else {
            0
        },
        measured_frame_rate: (r.spec.is_video() && total > 0.0).then(|| f64::from(samples) / total),
    }
}

fn multivariant(
    state: &[RenditionState],
    reports: &[RenditionReport],
    format: SegmentFormat,
) -> Multivariant {
    let audio = state.iter().zip(reports).find(|(r, _)| !r.spec.is_video());
    let videos: Vec<_> = state
        .iter()
        .zip(reports)
        .filter(|(r, _)| r.spec.is_video())
        .collect();
    let version = if format == SegmentFormat::Cmaf { 6 } else { 3 };
    let audio_media: Vec<AudioRendition> = match (&audio, videos.is_empty()) {
        (Some((r, _)), false) => vec![AudioRendition {
            group: AUDIO_GROUP.into(),
            name: r.spec.id.clone(),
            uri: r.spec.playlist_key(),
            channels: match r.spec.kind {
                RenditionKind::Audio { channels, .. } => channels,
                RenditionKind::Video { .. } => 2,
            },
        }],
        _ => vec![],
    };
    let variants = if videos.is_empty() {
        // Audio-only: the audio playlist is the variant.
        audio
            .iter()
            .map(|(_, rep)| Variant {
                uri: rep.playlist.clone(),
                bandwidth: rep.peak_bitrate,
                average_bandwidth: rep.average_bitrate,
                codecs: rep.codec.clone(),
                resolution: None,
                frame_rate: None,
                audio_group: None,
            })
            .collect()
    } else {
        videos
            .iter()
            .map(|(r, rep)| {
                let (res, fps) = match r.spec.kind {
                    RenditionKind::Video {
                        width,
                        height,
                        frame_rate,
                    } => (
                        Some((width, height)),
                        frame_rate.or(rep.measured_frame_rate),
                    ),
                    RenditionKind::Audio { .. } => (None, None),
                };
                let (a_peak, a_avg, a_codec) = audio
                    .map(|(_, a)| (a.peak_bitrate, a.average_bitrate, Some(a.codec.clone())))
                    .unwrap_or((0, 0, None));
                let codecs = std::iter::once(rep.codec.clone())
                    .chain(a_codec)
                    .collect::<Vec<_>>()
                    .join(",");
                Variant {
                    uri: rep.playlist.clone(),
                    bandwidth: rep.peak_bitrate + a_peak,
                    average_bandwidth: rep.average_bitrate + a_avg,
                    codecs,
                    resolution: res,
                    frame_rate: fps,
                    audio_group: audio.map(|_| AUDIO_GROUP.to_string()),
                }
            })
            .collect()
    };
    Multivariant {
        variants,
        audio: audio_media,
        version,
        session_data: Vec::new(),
    }
}
