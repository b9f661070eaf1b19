//! Helpers for the end-to-end tests: generated fixtures, running the real
//! `strata` binary, and independent checks of its output through ffprobe.
#![allow(dead_code)]

pub mod s3;

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
    strata_env(args, &[])
}

pub fn strata_env(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run strata")
}

/// Start `strata ARGS` with JSON events on stdout and return once an event
/// line containing `needle` was printed (the rest of stdout is discarded).
pub fn spawn_until(args: &[&str], env: &[(&str, String)], needle: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start strata");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains(needle) {
            return child;
        }
    }
    let out = child.wait_with_output().unwrap();
    panic!(
        "strata ended without printing {needle}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// Play a published output with hls.js in headless Chromium
/// (fixtures/player/play.mjs): every level locked in turn must decode at its
/// advertised size and advance, the end must be reached, and no fatal error.
/// A generated deck (see fixtures/make-deck.py), cached between runs. Runs
/// python-pptx from the virtualenv scripts/test.sh makes (`STRATA_PYTHON`).
pub fn deck(shape: &str) -> PathBuf {
    let root = repo_root();
    let ext = match shape {
        "three-pdf" | "bad-empty-pdf" => "pdf",
        "bad-ppt" | "lecture-ppt" => "ppt",
        "lecture-odp" => "odp",
        _ => "pptx",
    };
    let dir = root.join("fixtures/cache/decks");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{shape}.{ext}"));
    if out.exists() {
        return out;
    }
    let python = std::env::var("STRATA_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/strata-tools/pyenv/bin/python",
            std::env::var("HOME").unwrap()
        )
    });
    let tmp = dir.join(format!("{shape}.{}.tmp.{ext}", std::process::id()));
    let run = Command::new(&python)
        .arg(root.join("fixtures/make-deck.py"))
        .arg(shape)
        .arg(&tmp)
        .output()
        .unwrap_or_else(|e| panic!("run {python} (scripts/test.sh makes it): {e}"));
    assert!(
        run.status.success(),
        "deck {shape}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

pub fn assert_plays(out: &Path) {
    let player = repo_root().join("fixtures/player");
    assert!(
        player.join("node_modules/hls.js").exists()
            && player.join("node_modules/playwright-core").exists(),
        "run `npm install` in {} (scripts/test.sh does) before the playback tests",
        player.display()
    );
    let levels = master(out).variants.len();
    let run = Command::new("node")
        .arg(player.join("play.mjs"))
        .arg(out)
        .output()
        .expect("run node");
    assert!(
        run.status.success(),
        "player failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "player output {e}: {}",
            String::from_utf8_lossy(&run.stdout)
        )
    });
    assert!(r["fatal"].is_null(), "fatal hls.js error: {r}");
    let played = r["levels"].as_array().unwrap();
    assert_eq!(played.len(), levels, "{r}");
    for l in played {
        assert_eq!(
            l["sized"], true,
            "level did not decode at its advertised size: {l}"
        );
        assert_eq!(l["advanced"], true, "playback did not advance: {l}");
    }
    assert_eq!(r["ended"], true, "end not reached: {r}");
}

static NEXT_DB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A new, empty database in the PostgreSQL cluster that scripts/test.sh
/// started (`STRATA_TEST_POSTGRES_URL` is its admin URL); returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("STRATA_TEST_POSTGRES_URL").expect(
        "STRATA_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL",
    );
    let name = format!(
        "strata_t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}
