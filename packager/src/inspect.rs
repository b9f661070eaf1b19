//! `inspect`: what a segment really holds, read from its bytes.
//!
//! The packager trusts the bitstream, not the pipeline: durations, start
//! times, keyframes and CODECS strings all come from here.
//!
//! ```text
//! fMP4 init   ─► moov/trak: mdhd timescale, avcC (avc1.PPCCLL) | esds (mp4a.40.N), size
//! fMP4 media  ─► moof/traf: tfdt + trun ─► start, duration, samples, first sample sync?
//! MPEG-TS     ─► PAT/PMT ─► PES PTS, H.264 NAL types (IDR, SPS) | ADTS header
//! ```

use crate::error::{PackagerError, Result};

/// What an fMP4 initialisation segment says about its (single) track.
#[derive(Debug, Clone, PartialEq)]
pub struct InitInfo {
    pub timescale: u32,
    pub codec: String,
    /// Media time the edit list skips (B-frame reordering delay, AAC priming).
    pub edit_offset: i64,
}

/// What a media segment holds, in seconds of presentation time.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub start: f64,
    /// `None` until the next segment (or the end) is known: it is the time
    /// from this segment's start to the next one's.
    pub duration: Option<f64>,
    pub samples: u32,
    pub starts_with_keyframe: bool,
    /// CODECS value, when the segment carries it (TS: from the SPS / ADTS).
    pub codec: Option<String>,
    /// Duration of the longest frame, as seen in the segment's own timing.
    pub frame_duration: Option<f64>,
    /// End of the last frame to be presented.
    pub end: Option<f64>,
}

fn err(what: &str, format: &'static str, reason: impl Into<String>) -> PackagerError {
    PackagerError::Parse {
        what: what.into(),
        format,
        reason: reason.into(),
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().unwrap()))
}

/// Iterate over the boxes in `data`: (fourcc, payload).
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let size = be_u32(data, pos)? as usize;
        let kind: [u8; 4] = data.get(pos + 4..pos + 8)?.try_into().ok()?;
        let (header, size) = match size {
            1 => (16, be_u64(data, pos + 8)? as usize),
            0 => (8, data.len() - pos),
            n => (8, n),
        };
        if size < header || pos + size > data.len() {
            return None;
        }
        let payload = &data[pos + header..pos + size];
        pos += size;
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, p)| p)
}

fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    kinds.iter().try_fold(data, |d, k| child(d, k))
}

pub fn mp4_init(what: &str, data: &[u8]) -> Result<InitInfo> {
    let e = |r: &str| err(what, "fMP4 init", r);
    let trak = path(data, &[b"moov", b"trak"]).ok_or_else(|| e("no moov/trak box"))?;
    let mdhd = path(trak, &[b"mdia", b"mdhd"]).ok_or_else(|| e("no mdhd box"))?;
    let timescale = if mdhd.first() == Some(&1) {
        be_u32(mdhd, 20)
    } else {
        be_u32(mdhd, 12)
    }
    .filter(|t| *t > 0)
    .ok_or_else(|| e("bad mdhd timescale"))?;
    let stsd = path(trak, &[b"mdia", b"minf", b"stbl", b"stsd"]).ok_or_else(|| e("no stsd box"))?;
    // stsd: version/flags (4), entry count (4), then sample entries.
    let entries = stsd.get(8..).ok_or_else(|| e("short stsd"))?;
    let (kind, entry) = boxes(entries).next().ok_or_else(|| e("empty stsd"))?;
    let codec = match &kind {
        b"avc1" | b"avc3" => {
            // Visual sample entry: 78 bytes before its child boxes.
            let avcc = entry
                .get(78..)
                .and_then(|c| child(c, b"avcC"))
                .ok_or_else(|| e("no avcC"))?;
            let p = avcc.get(1..4).ok_or_else(|| e("short avcC"))?;
            format!(
                "{}.{:02x}{:02x}{:02x}",
                String::from_utf8_lossy(&kind),
                p[0],
                p[1],
                p[2]
            )
        }
        b"mp4a" => {
            // Audio sample entry: 28 bytes before its child boxes.
            let esds = entry
                .get(28..)
                .and_then(|c| child(c, b"esds"))
                .ok_or_else(|| e("no esds"))?;
            format!(
                "mp4a.40.{}",
                esds_object_type(esds).ok_or_else(|| e("no AudioSpecificConfig in esds"))?
            )
        }
        other => {
            return Err(e(&format!(
                "unsupported sample entry {:?}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    let edit_offset = path(trak, &[b"edts", b"elst"])
        .and_then(|elst| {
            // First entry's media_time; version 1 uses 64-bit fields.
            if elst.first() == Some(&1) {
                be_u64(elst, 16).map(|v| v as i64)
            } else {
                be_u32(elst, 12).map(|v| i64::from(v as i32))
            }
        })
        .filter(|v| *v > 0)
        .unwrap_or(0);
    Ok(InitInfo {
        timescale,
        codec,
        edit_offset,
    })
}

/// The AAC audio object type from an esds box's DecoderSpecificInfo.
fn esds_object_type(esds: &[u8]) -> Option<u8> {
    // Walk the descriptors: ES (3) > DecoderConfig (4) > DecoderSpecific (5).
    let mut i = 4; // version + flags
    let read_len = |i: &mut usize| -> Option<usize> {
        let mut len = 0usize;
        for _ in 0..4 {
            let b = *esds.get(*i)?;
            *i += 1;
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(len)
    };
    while i < esds.len() {
        let tag = esds[i];
        i += 1;
        let len = read_len(&mut i)?;
        match tag {
            3 => {
                let flags = *esds.get(i + 2)?;
                i += 3;
                if flags & 0x80 != 0 {
                    i += 2;
                }
                if flags & 0x40 != 0 {
                    i += 1 + usize::from(*esds.get(i)?);
                }
                if flags & 0x20 != 0 {
                    i += 2;
                }
            }
            4 => i += 13,
            5 => {
                let aot = esds.get(i)? >> 3;
                return Some(if aot == 31 {
                    32 + ((esds.get(i)? & 7) << 3 | esds.get(i + 1)? >> 5)
                } else {
                    aot
                });
            }
            _ => i += len,
        }
    }
    None
}

pub fn mp4_segment(what: &str, data: &[u8], init: &InitInfo) -> Result<SegmentInfo> {
    let e = |r: &str| err(what, "fMP4 segment", r);
    let moof = child(data, b"moof").ok_or_else(|| e("no moof box"))?;
    if child(data, b"mdat").is_none() {
        return Err(e("no mdat box"));
    }
    let traf = child(moof, b"traf").ok_or_else(|| e("no traf box"))?;
    let tfhd = child(traf, b"tfhd").ok_or_else(|| e("no tfhd box"))?;
    let tfhd_flags = be_u32(tfhd, 0).unwrap_or(0) & 0xff_ffff;
    let mut at = 8; // version/flags + track id
    if tfhd_flags & 0x1 != 0 {
        at += 8;
    }
    if tfhd_flags & 0x2 != 0 {
        at += 4;
    }
    let default_duration = if tfhd_flags & 0x8 != 0 {
        let v = be_u32(tfhd, at);
        at += 4;
        v
    } else {
        None
    };
    if tfhd_flags & 0x10 != 0 {
        at += 4;
    }
    let default_flags = if tfhd_flags & 0x20 != 0 {
        be_u32(tfhd, at)
    } else {
        None
    };

    let tfdt = child(traf, b"tfdt").ok_or_else(|| e("no tfdt box"))?;
    let base = if tfdt.first() == Some(&1) {
        be_u64(tfdt, 4)
    } else {
        be_u32(tfdt, 4).map(u64::from)
    }
    .ok_or_else(|| e("short tfdt"))?;

    let mut samples = 0u32;
    let mut total: u64 = 0;
    let mut first_flags = None;
    let mut min_pts: Option<i64> = None;
    let mut max_end: i64 = i64::MIN;
    let mut max_dur: u64 = 0;
    let mut all_pts: Vec<i64> = Vec::new();
    for (kind, trun) in boxes(traf) {
        if &kind != b"trun" {
            continue;
        }
        let version = trun[0];
        let flags = be_u32(trun, 0).unwrap_or(0) & 0xff_ffff;
        let count = be_u32(trun, 4).ok_or_else(|| e("short trun"))?;
        let mut p = 8;
        if flags & 0x1 != 0 {
            p += 4;
        }
        let trun_first_flags = if flags & 0x4 != 0 {
            let v = be_u32(trun, p);
            p += 4;
            v
        } else {
            None
        };
        for i in 0..count {
            let dur = if flags & 0x100 != 0 {
                let v = be_u32(trun, p);
                p += 4;
                v
            } else {
                default_duration
            }
            .ok_or_else(|| e("sample without duration"))?;
            if flags & 0x200 != 0 {
                p += 4;
            }
            let sflags = if flags & 0x400 != 0 {
                let v = be_u32(trun, p);
                p += 4;
                v
            } else if i == 0 {
                trun_first_flags.or(default_flags)
            } else {
                default_flags
            };
            let cts = if flags & 0x800 != 0 {
                let v = be_u32(trun, p).ok_or_else(|| e("short trun"))?;
                p += 4;
                if version == 0 {
                    i64::from(v)
                } else {
                    i64::from(v as i32)
                }
            } else {
                0
            };
            if samples == 0 && i == 0 {
                first_flags = sflags;
            }
            let pts = (base + total) as i64 + cts;
            min_pts = Some(min_pts.map_or(pts, |m| m.min(pts)));
            max_end = max_end.max(pts + i64::from(dur));
            all_pts.push(pts);
            total += u64::from(dur);
            max_dur = max_dur.max(u64::from(dur));
        }
        samples += count;
    }
    if samples == 0 {
        return Err(e("no samples"));
    }
    let ts = f64::from(init.timescale);
    // sample_is_non_sync_sample is bit 16 of the sample flags.
    let sync = first_flags.is_none_or(|f| f & 0x0001_0000 == 0);
    let start = (min_pts.unwrap_or(base as i64) - init.edit_offset) as f64 / ts;
    // Presentation span, not the sum of sample durations: with B-frames and a
    // variable frame rate the decode-time deltas drift from presentation time.
    // The packager turns starts and ends into EXTINF durations.
    Ok(SegmentInfo {
        start,
        duration: None,
        samples,
        starts_with_keyframe: sync,
        codec: None,
        frame_duration: Some(longest_frame(all_pts, max_dur as i64) as f64 / ts),
        end: Some((max_end - init.edit_offset) as f64 / ts),
    })
}

/// The longest time one frame is shown: the largest gap between presentation
/// times, or the longest sample duration (a variable frame rate has both).
fn longest_frame(mut pts: Vec<i64>, longest_sample: i64) -> i64 {
    pts.sort_unstable();
    pts.windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0)
        .max(longest_sample)
}

/// Parse an MPEG-TS segment holding one elementary stream (H.264 or AAC).
pub fn ts_segment(what: &str, data: &[u8]) -> Result<SegmentInfo> {
    let e = |r: &str| err(what, "MPEG-TS", r);
    if data.len() < 188 || !data.len().is_multiple_of(188) || data[0] != 0x47 {
        return Err(e(
            "not a whole number of 188-byte packets starting with 0x47",
        ));
    }
    let mut pmt_pid = None;
    let mut es: Option<(u16, u8)> = None; // (pid, stream type)
    let mut pes_payloads: Vec<Vec<u8>> = Vec::new();
    for pkt in data.chunks(188) {
        if pkt[0] != 0x47 {
            return Err(e("lost packet sync"));
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]);
        let afc = (pkt[3] >> 4) & 3;
        let mut p = 4;
        if afc & 2 != 0 {
            p += 1 + usize::from(pkt[4]);
        }
        if afc & 1 == 0 || p >= 188 {
            continue;
        }
        let payload = &pkt[p..];
        if pid == 0 && pusi {
            // PAT: first program's PMT PID.
            let s = &payload[1 + usize::from(payload[0])..];
            if s.len() >= 12 {
                pmt_pid = Some((u16::from(s[10] & 0x1f) << 8) | u16::from(s[11]));
            }
        } else if Some(pid) == pmt_pid && pusi && es.is_none() {
            let s = &payload[1 + usize::from(payload[0])..];
            if s.len() >= 12 {
                let section_len = (usize::from(s[1] & 0x0f) << 8) | usize::from(s[2]);
                let info_len = (usize::from(s[10] & 0x0f) << 8) | usize::from(s[11]);
                let mut i = 12 + info_len;
                let end = (3 + section_len).saturating_sub(4).min(s.len());
                while i + 5 <= end {
                    let st = s[i];
                    let epid = (u16::from(s[i + 1] & 0x1f) << 8) | u16::from(s[i + 2]);
                    if matches!(st, 0x1b | 0x0f | 0x24) {
                        es = Some((epid, st));
                        break;
                    }
                    i += 5 + ((usize::from(s[i + 3] & 0x0f) << 8) | usize::from(s[i + 4]));
                }
            }
        } else if es.is_some_and(|(epid, _)| epid == pid) {
            if pusi {
                pes_payloads.push(payload.to_vec());
            } else if let Some(last) = pes_payloads.last_mut() {
                last.extend_from_slice(payload);
            }
        }
    }
    let (_, stream_type) = es.ok_or_else(|| e("no H.264 or AAC stream in the PMT"))?;
    let mut pts_list = Vec::new();
    let mut first_es: Option<Vec<u8>> = None;
    for pes in &pes_payloads {
        if pes.len() < 9 || pes[0..3] != [0, 0, 1] {
            return Err(e("PES without a start code"));
        }
        let header_len = usize::from(pes[8]);
        if pes[7] & 0x80 != 0 && pes.len() >= 14 {
            let b = &pes[9..14];
            let pts = (u64::from(b[0] & 0x0e) << 29)
                | (u64::from(b[1]) << 22)
                | (u64::from(b[2] & 0xfe) << 14)
                | (u64::from(b[3]) << 7)
                | (u64::from(b[4]) >> 1);
            pts_list.push(pts);
        }
        if first_es.is_none() {
            first_es = pes.get(9 + header_len..).map(<[u8]>::to_vec);
        }
    }
    let first_es = first_es.ok_or_else(|| e("no PES packets"))?;
    let start = *pts_list.iter().min().ok_or_else(|| e("no PTS"))?;
    let mut sorted = pts_list.clone();
    sorted.sort_unstable();
    let deltas: Vec<u64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    // The last frame lasts as long as the one before it.
    let last_delta = deltas.last().copied();
    let frame = deltas.iter().copied().max();
    let (keyframe, codec) = if stream_type == 0x1b {
        let nals = annexb_nal_units(&first_es);
        let idr = nals
            .iter()
            .any(|n| n.first().is_some_and(|b| b & 0x1f == 5));
        let codec = nals
            .iter()
            .find(|n| n.first().is_some_and(|b| b & 0x1f == 7) && n.len() >= 4)
            .map(|sps| format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]));
        (idr, codec)
    } else {
        // ADTS: profile is the object type minus one.
        let aot = first_es.get(2).map(|b| (b >> 6) + 1);
        (true, aot.map(|a| format!("mp4a.40.{a}")))
    };
    Ok(SegmentInfo {
        start: start as f64 / 90_000.0,
        duration: None,
        samples: pts_list.len() as u32,
        starts_with_keyframe: keyframe,
        codec,
        frame_duration: frame.map(|f| f as f64 / 90_000.0),
        end: sorted
            .last()
            .map(|last| (last + last_delta.unwrap_or(0)) as f64 / 90_000.0),
    })
}

fn annexb_nal_units(es: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).map_or(es.len(), |&n| n - 3);
            // A 4-byte start code leaves a trailing zero on the previous unit.
            let end = if end > s && es[end - 1] == 0 {
                end - 1
            } else {
                end
            };
            &es[s..end.max(s)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn fragment_durations_and_sync_flag() {
        let init = InitInfo {
            timescale: 1000,
            codec: "avc1.64001f".into(),
            edit_offset: 0,
        };
        let tfhd = bx(b"tfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let mut tfdt_p = vec![1, 0, 0, 0];
        tfdt_p.extend_from_slice(&6000u64.to_be_bytes());
        let tfdt = bx(b"tfdt", &tfdt_p);
        // trun: flags duration(0x100) + flags(0x400), two samples.
        let mut t = vec![0, 0, 0x05, 0x00];
        t.extend_from_slice(&2u32.to_be_bytes());
        t.extend_from_slice(&40u32.to_be_bytes());
        t.extend_from_slice(&0x0200_0000u32.to_be_bytes());
        t.extend_from_slice(&40u32.to_be_bytes());
        t.extend_from_slice(&0x0101_0000u32.to_be_bytes());
        let traf = bx(b"traf", &[tfhd, tfdt, bx(b"trun", &t)].concat());
        let seg = [bx(b"moof", &traf), bx(b"mdat", &[1, 2, 3])].concat();
        let info = mp4_segment("s", &seg, &init).unwrap();
        assert_eq!(info.start, 6.0);
        assert_eq!(info.end, Some(6.08));
        assert_eq!(info.samples, 2);
        assert!(info.starts_with_keyframe);
        assert!(mp4_segment("s", &[0u8; 16], &init).is_err());
    }

    #[test]
    fn ts_rejects_garbage() {
        assert!(ts_segment("x", b"hello").is_err());
        assert!(ts_segment("x", &[0u8; 376]).is_err());
    }
}
