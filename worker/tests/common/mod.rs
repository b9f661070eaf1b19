//! Helpers for the end-to-end tests: generated fixtures, running the real
//! `strata` binary, and independent checks of its output through ffprobe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A generated input (see fixtures/make-media.sh), cached between runs.
pub fn fixture(shape: &str) -> PathBuf {
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("fixtures/make-media.sh"))
        .arg(shape)
        .arg(root.join("fixtures/cache"))
        .output()
        .expect("run fixtures/make-media.sh");
    assert!(
        out.status.success(),
        "fixture {shape}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("run strata")
}

pub fn transcode(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "transcode",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    strata(&args)
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "strata failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn master(dir: &Path) -> m3u8_rs::MasterPlaylist {
    let bytes = std::fs::read(dir.join("master.m3u8")).expect("master.m3u8");
    m3u8_rs::parse_master_playlist_res(&bytes).expect("valid master playlist")
}

pub fn media(path: &Path) -> m3u8_rs::MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m3u8_rs::parse_media_playlist_res(&bytes).expect("valid media playlist")
}

/// A segment as a player would fetch it: init + media for fMP4.
pub fn playable_segment(playlist: &Path, pl: &m3u8_rs::MediaPlaylist, index: usize) -> PathBuf {
    let dir = playlist.parent().unwrap();
    let seg = dir.join(&pl.segments[index].uri);
    let map = pl.segments.iter().find_map(|s| s.map.as_ref());
    match map {
        None => seg,
        Some(m) => {
            // Beside the segment, inside the test's own temporary directory.
            let joined = dir.join(format!("joined-{index}.mp4"));
            let mut data = std::fs::read(dir.join(&m.uri)).unwrap();
            data.extend(std::fs::read(&seg).unwrap());
            std::fs::write(&joined, data).unwrap();
            joined
        }
    }
}

pub fn ffprobe_json(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The first `n` decoded frames: (pts seconds, keyframe).
pub fn first_frames(path: &Path, n: usize) -> Vec<(f64, bool)> {
    let v = ffprobe_json(
        path,
        &[
            "-show_entries",
            "frame=pts_time,key_frame",
            "-read_intervals",
            &format!("%+#{n}"),
        ],
    );
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["pts_time"].as_str().unwrap().parse().unwrap(),
                f["key_frame"].as_i64() == Some(1),
            )
        })
        .collect()
}

pub fn stream_info(path: &Path) -> serde_json::Value {
    ffprobe_json(path, &["-show_entries", "stream=codec_type,codec_name,profile,level,width,height,avg_frame_rate,r_frame_rate,duration,sample_rate,channels"])["streams"][0].clone()
}

/// Duration of the input's stream of one kind ("video" or "audio"), seconds.
pub fn input_stream_duration(path: &Path, kind: &str) -> f64 {
    let v = ffprobe_json(
        path,
        &[
            "-show_entries",
            "stream=codec_type,duration:format=duration",
        ],
    );
    let stream = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .cloned();
    stream
        .and_then(|s| s["duration"].as_str().map(|d| d.parse().unwrap()))
        .unwrap_or_else(|| v["format"]["duration"].as_str().unwrap().parse().unwrap())
}

pub fn rational(s: &str) -> f64 {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
}
