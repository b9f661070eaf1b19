//! `playlist`: our HLS playlist types. m3u8-rs writes the text; these types
//! hold the RFC 8216 rules it does not: durations are formatted in one place
//! (milliseconds), the target duration is derived from the segments and a
//! target below any rounded EXTINF is rejected (§4.3.3.1), and the version is
//! the lowest that allows the features used (§7).

use crate::error::{PackagerError, Result};

/// EXTINF values are written with millisecond precision.
const EXTINF_DECIMALS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSegment {
    pub uri: String,
    /// Seconds.
    pub duration: f64,
}

/// A VOD media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub segments: Vec<PlaylistSegment>,
    /// The EXT-X-MAP URI (fMP4 init segment), if any.
    pub map: Option<String>,
    /// `None` derives it from the segments.
    pub target_duration: Option<u64>,
}

/// Round a duration to the written precision, so every check sees what a
/// player reads.
pub fn written_duration(seconds: f64) -> f64 {
    let scale = 10f64.powi(EXTINF_DECIMALS as i32);
    (seconds * scale).round() / scale
}

/// The smallest target duration RFC 8216 allows for these segments.
pub fn min_target_duration(segments: &[PlaylistSegment]) -> u64 {
    segments
        .iter()
        .map(|s| written_duration(s.duration).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

impl MediaPlaylist {
    /// EXT-X-VERSION: 6 for EXT-X-MAP in a full playlist, else 3 for
    /// floating-point EXTINF.
    pub fn version(&self) -> usize {
        if self.map.is_some() { 6 } else { 3 }
    }

    pub fn render(&self) -> Result<String> {
        if self.segments.is_empty() {
            return Err(PackagerError::Playlist(
                "a media playlist needs at least one segment".into(),
            ));
        }
        let min = min_target_duration(&self.segments);
        let target = self.target_duration.unwrap_or(min);
        if target < min {
            return Err(PackagerError::Playlist(format!(
                "target duration {target} is below a rounded EXTINF of {min}"
            )));
        }
        if let Some(bad) = self
            .segments
            .iter()
            .find(|s| !s.duration.is_finite() || s.duration <= 0.0)
        {
            return Err(PackagerError::Playlist(format!(
                "segment {} has duration {}",
                bad.uri, bad.duration
            )));
        }
        let map = self.map.as_ref().map(|uri| m3u8_rs::Map {
            uri: uri.clone(),
            ..Default::default()
        });
        let pl = m3u8_rs::MediaPlaylist {
            version: Some(self.version()),
            target_duration: target,
            media_sequence: 0,
            segments: self
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| m3u8_rs::MediaSegment {
                    uri: s.uri.clone(),
                    duration: written_duration(s.duration) as f32,
                    // The map applies until changed: write it once.
                    map: if i == 0 { map.clone() } else { None },
                    ..Default::default()
                })
                .collect(),
            end_list: true,
            playlist_type: Some(m3u8_rs::MediaPlaylistType::Vod),
            independent_segments: true,
            ..Default::default()
        };
        write(|w| {
            m3u8_rs::WRITE_OPT_FLOAT_PRECISION
                .store(EXTINF_DECIMALS, std::sync::atomic::Ordering::Relaxed);
            pl.write_to(w)
        })
    }
}

fn write(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut out = Vec::new();
    f(&mut out).map_err(|e| PackagerError::Playlist(e.to_string()))?;
    String::from_utf8(out).map_err(|e| PackagerError::Playlist(e.to_string()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak segment bit rate, bit/s, audio included.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    pub audio_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    pub group: String,
    pub name: String,
    pub uri: String,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Multivariant {
    pub variants: Vec<Variant>,
    pub audio: Vec<AudioRendition>,
    /// Version of the media playlists it names.
    pub version: usize,
    /// EXT-X-SESSION-DATA entries: (DATA-ID, URI).
    pub session_data: Vec<(String, String)>,
}

impl Multivariant {
    pub fn render(&self) -> Result<String> {
        if self.variants.is_empty() {
            return Err(PackagerError::Playlist(
                "a multivariant playlist needs a variant".into(),
            ));
        }
        for v in &self.variants {
            if let Some(g) = &v.audio_group
                && !self.audio.iter().any(|a| &a.group == g)
            {
                return Err(PackagerError::Playlist(format!(
                    "variant {} names missing audio group {g}",
                    v.uri
                )));
            }
        }
        let pl = m3u8_rs::MasterPlaylist {
            version: Some(self.version.max(3)),
            independent_segments: true,
            alternatives: self
                .audio
                .iter()
                .enumerate()
                .map(|(i, a)| m3u8_rs::AlternativeMedia {
                    media_type: m3u8_rs::AlternativeMediaType::Audio,
                    uri: Some(a.uri.clone()),
                    group_id: a.group.clone(),
                    name: a.name.clone(),
                    default: i == 0,
                    autoselect: true,
                    channels: Some(a.channels.to_string()),
                    ..Default::default()
                })
                .collect(),
            variants: self
                .variants
                .iter()
                .map(|v| m3u8_rs::VariantStream {
                    uri: v.uri.clone(),
                    bandwidth: v.bandwidth,
                    average_bandwidth: Some(v.average_bandwidth),
                    codecs: Some(v.codecs.clone()),
                    resolution: v.resolution.map(|(w, h)| m3u8_rs::Resolution {
                        width: u64::from(w),
                        height: u64::from(h),
                    }),
                    frame_rate: v.frame_rate.map(|f| (f * 1000.0).round() / 1000.0),
                    audio: v.audio_group.clone(),
                    ..Default::default()
                })
                .collect(),
            session_data: self
                .session_data
                .iter()
                .map(|(id, uri)| m3u8_rs::SessionData {
                    data_id: id.clone(),
                    field: m3u8_rs::SessionDataField::Uri(uri.clone()),
                    language: None,
                    other_attributes: None,
                })
                .collect(),
            ..Default::default()
        };
        write(|w| pl.write_to(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(uri: &str, d: f64) -> PlaylistSegment {
        PlaylistSegment {
            uri: uri.into(),
            duration: d,
        }
    }

    #[test]
    fn exact_media_playlist_text() {
        let pl = MediaPlaylist {
            segments: vec![
                seg("seg_00001.m4s", 6.006),
                seg("seg_00002.m4s", 6.4996),
                seg("seg_00003.m4s", 0.9),
            ],
            map: Some("init.mp4".into()),
            target_duration: None,
        };
        assert_eq!(
            pl.render().unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.006,\nseg_00001.m4s\n#EXTINF:6.500,\nseg_00002.m4s\n#EXTINF:0.900,\nseg_00003.m4s\n#EXT-X-ENDLIST\n"
                .replace("#EXT-X-TARGETDURATION:6", "#EXT-X-TARGETDURATION:7")
        );
    }

    #[test]
    fn target_below_rounded_extinf_is_rejected() {
        let pl = MediaPlaylist {
            segments: vec![seg("a.ts", 6.5)],
            map: None,
            target_duration: Some(6),
        };
        assert!(pl.render().unwrap_err().to_string().contains("below"));
        let ok = MediaPlaylist {
            target_duration: Some(7),
            ..pl
        };
        assert!(ok.render().unwrap().contains("#EXT-X-VERSION:3"));
    }

    #[test]
    fn rejects_empty_and_bad_durations() {
        let pl = MediaPlaylist {
            segments: vec![],
            map: None,
            target_duration: None,
        };
        assert!(pl.render().is_err());
        let pl = MediaPlaylist {
            segments: vec![seg("a.ts", 0.0)],
            map: None,
            target_duration: None,
        };
        assert!(pl.render().is_err());
    }

    #[test]
    fn multivariant_with_audio_group() {
        let m = Multivariant {
            variants: vec![Variant {
                uri: "video/720p/index.m3u8".into(),
                bandwidth: 3_000_000,
                average_bandwidth: 2_500_000,
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(29.97002997),
                audio_group: Some("aud".into()),
            }],
            audio: vec![AudioRendition {
                group: "aud".into(),
                name: "aac_128k".into(),
                uri: "audio/aac_128k/index.m3u8".into(),
                channels: 2,
            }],
            version: 6,
            session_data: vec![("com.strata.slides".into(), "slides/slides.json".into())],
        };
        let text = m.render().unwrap();
        assert!(
            text.contains(
                "#EXT-X-SESSION-DATA:DATA-ID=\"com.strata.slides\",URI=\"slides/slides.json\""
            ),
            "{text}"
        );
        assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio/aac_128k/index.m3u8\",GROUP-ID=\"aud\",NAME=\"aac_128k\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\""), "{text}");
        assert!(text.contains("BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.97,AUDIO=\"aud\""), "{text}");
        let bad = Multivariant { audio: vec![], ..m };
        assert!(bad.render().is_err());
    }
}
