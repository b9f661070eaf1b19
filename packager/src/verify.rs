//! `verify`: the publish gate. Nothing names a rendition in `master.m3u8`
//! until this passes against what is really in the store:
//!
//! - every init segment, media segment and media playlist exists there, at
//!   the size we wrote;
//! - every video segment starts on a keyframe;
//! - all video renditions have the same segment boundaries;
//! - each rendition's durations add up to the input's duration;
//! - audio and video start together.

use crate::error::{PackagerError, Result};
use crate::package::RenditionState;
use crate::store::Store;

/// Boundaries of two renditions may differ by this much (rounding only).
const BOUNDARY_TOLERANCE: f64 = 0.001;
/// Audio may start this far from video and still count as in sync.
const SYNC_TOLERANCE: f64 = 0.050;
/// Slack on top of one frame when comparing total durations: AAC frames
/// are 1024 samples, so audio ends up to one frame after the video does.
const DURATION_SLACK: f64 = 0.025;

/// Returns the names of the checks that ran and passed (for report.json).
pub(crate) fn verify(
    store: &dyn Store,
    renditions: &[RenditionState],
    expected: f64,
) -> Result<Vec<&'static str>> {
    let mut problems = Vec::new();
    // One listing of the store, not a request per object.
    let listed = store.list("")?;
    let check_object = |problems: &mut Vec<String>, key: &str, size: u64| match listed.get(key) {
        Some(&s) if s == size => {}
        Some(&s) => problems.push(format!(
            "{} has {s} bytes, {size} were written",
            store.locate(key)
        )),
        None => problems.push(format!("{} is missing", store.locate(key))),
    };
    for r in renditions {
        if let Some((key, size, _)) = &r.init {
            check_object(&mut problems, key, *size);
        }
        for s in r.segments.values() {
            check_object(&mut problems, &s.key, s.size);
        }
        match &r.playlist {
            Some((key, size)) => check_object(&mut problems, key, *size),
            None => problems.push(format!("rendition {} has no media playlist", r.spec.id)),
        }
    }

    let videos: Vec<&RenditionState> = renditions.iter().filter(|r| r.spec.is_video()).collect();
    for r in &videos {
        for (i, s) in &r.segments {
            if !s.info.starts_with_keyframe {
                problems.push(format!(
                    "{}: segment {i} does not start on a keyframe",
                    r.spec.id
                ));
            }
        }
    }
    if let Some(first) = videos.first() {
        let reference: Vec<f64> = first.segments.values().map(|s| s.info.start).collect();
        for r in &videos[1..] {
            let starts: Vec<f64> = r.segments.values().map(|s| s.info.start).collect();
            if starts.len() != reference.len() {
                problems.push(format!(
                    "{} has {} segments but {} has {}",
                    r.spec.id,
                    starts.len(),
                    first.spec.id,
                    reference.len()
                ));
            } else if let Some((i, (a, b))) = starts
                .iter()
                .zip(&reference)
                .enumerate()
                .find(|(_, (a, b))| (*a - *b).abs() > BOUNDARY_TOLERANCE)
            {
                problems.push(format!(
                    "segment {} starts at {a:.3} s in {} but at {b:.3} s in {}",
                    i + 1,
                    r.spec.id,
                    first.spec.id
                ));
            }
        }
    }

    for r in renditions {
        if let Some((i, _)) = r
            .segments
            .iter()
            .find(|(_, s)| s.info.duration.is_none_or(|d| d <= 0.0))
        {
            problems.push(format!(
                "{}: segment {i} has no measurable duration",
                r.spec.id
            ));
            continue;
        }
        let total = r.total_duration();
        let frame = r
            .segments
            .values()
            .filter_map(|s| s.info.frame_duration)
            .fold(0.0, f64::max);
        let tolerance = frame + DURATION_SLACK;
        if (total - expected).abs() > tolerance {
            problems.push(format!(
                "{}: segments add up to {total:.3} s but the input lasts {expected:.3} s (tolerance {tolerance:.3} s)",
                r.spec.id
            ));
        }
    }

    let start = |r: &RenditionState| r.segments.values().next().map(|s| s.info.start);
    let has_both = !videos.is_empty() && renditions.iter().any(|r| !r.spec.is_video());
    if let (Some(v), Some(a)) = (
        videos.first().and_then(|r| start(r)),
        renditions
            .iter()
            .find(|r| !r.spec.is_video())
            .and_then(start),
    ) && (v - a).abs() > SYNC_TOLERANCE
    {
        problems.push(format!("audio starts at {a:.3} s but video at {v:.3} s"));
    }

    if problems.is_empty() {
        let mut checks = vec![
            "objects_exist_at_written_size",
            "segments_start_on_keyframes",
            "boundaries_aligned",
            "durations_match_input",
        ];
        if has_both {
            checks.push("audio_video_start_together");
        }
        Ok(checks)
    } else {
        Err(PackagerError::Verify { problems })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inspect::SegmentInfo;
    use crate::package::{RenditionKind, RenditionSpec, StoredSegment};
    use crate::store::LocalStore;

    /// A video rendition whose segments start at `starts` and end at `end`,
    /// written to `store` for real.
    fn video(
        store: &LocalStore,
        id: &str,
        starts: &[f64],
        end: f64,
        keyframes: bool,
    ) -> RenditionState {
        let mut segments = BTreeMap::new();
        for (i, &start) in starts.iter().enumerate() {
            let key = format!("video/{id}/seg_{:05}.m4s", i + 1);
            store.put(&key, b"data", "video/iso.segment").unwrap();
            let next = starts.get(i + 1).copied().unwrap_or(end);
            segments.insert(
                i as u32 + 1,
                StoredSegment {
                    key,
                    size: 4,
                    info: SegmentInfo {
                        start,
                        duration: Some(next - start),
                        samples: 10,
                        starts_with_keyframe: keyframes,
                        codec: None,
                        frame_duration: Some(0.04),
                        end: Some(next),
                    },
                },
            );
        }
        let playlist = format!("video/{id}/index.m3u8");
        store
            .put(&playlist, b"#EXTM3U\n", "application/vnd.apple.mpegurl")
            .unwrap();
        RenditionState {
            spec: RenditionSpec {
                id: id.into(),
                kind: RenditionKind::Video {
                    width: 640,
                    height: 360,
                    frame_rate: Some(25.0),
                },
                target_bitrate: 800_000,
            },
            init: None,
            segments,
            playlist: Some((playlist, 8)),
        }
    }

    fn problems(result: Result<Vec<&'static str>>) -> Vec<String> {
        match result {
            Ok(_) => vec![],
            Err(PackagerError::Verify { problems }) => problems,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn a_good_set_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let r = [
            video(&store, "a", &[0.0, 6.0], 10.0, true),
            video(&store, "b", &[0.0, 6.0], 10.0, true),
        ];
        assert_eq!(problems(verify(&store, &r, 10.0)), Vec::<String>::new());
    }

    #[test]
    fn every_kind_of_problem_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let r = [
            video(&store, "a", &[0.0, 6.0], 10.0, true),
            video(&store, "b", &[0.0, 6.04], 10.0, false),
        ];
        store.delete("video/a/seg_00002.m4s").unwrap();
        let p = problems(verify(&store, &r, 12.0)).join("\n");
        assert!(p.contains("seg_00002.m4s is missing"), "{p}");
        assert!(p.contains("does not start on a keyframe"), "{p}");
        assert!(
            p.contains("segment 2 starts at 6.040 s in b but at 6.000 s in a"),
            "{p}"
        );
        assert!(
            p.contains("add up to 10.000 s but the input lasts 12.000 s"),
            "{p}"
        );
    }

    #[test]
    fn segment_counts_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let r = [
            video(&store, "a", &[0.0, 6.0], 10.0, true),
            video(&store, "b", &[0.0], 10.0, true),
        ];
        let p = problems(verify(&store, &r, 10.0)).join("\n");
        assert!(p.contains("b has 1 segments but a has 2"), "{p}");
    }
}
