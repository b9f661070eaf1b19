//! Bad input and bad output: a clear message naming the file, the documented
//! exit code, no panic, and never a master playlist.

mod common;

use common::*;

fn expect_failure(input: &std::path::Path, code: i32, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = transcode(input, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(code),
        "{}: {stderr}",
        input.display()
    );
    assert!(
        stderr.contains(&input.display().to_string()),
        "message must name the file: {stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("master.m3u8").exists());
}

#[test]
fn empty_file() {
    expect_failure(&fixture("bad-empty"), 3, "empty");
}

#[test]
fn random_bytes() {
    expect_failure(&fixture("bad-random"), 3, "not a media file");
}

#[test]
fn text_file() {
    expect_failure(&fixture("bad-text"), 3, "text file");
}

#[test]
fn truncated_mp4() {
    expect_failure(&fixture("bad-truncated"), 3, "bad-truncated");
}

#[test]
fn unsupported_stream() {
    expect_failure(&fixture("bad-image"), 3, "still image");
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    expect_failure(&dir.path().join("nope.mp4"), 3, "No such file");
}

#[test]
fn unwritable_output() {
    let input = fixture("audio-only");
    let dir = tempfile::tempdir().unwrap();
    // A file where the output directory should be.
    let out = dir.path().join("taken");
    std::fs::write(&out, b"not a directory").unwrap();
    let run = transcode(&input, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let input = fixture("audio-only");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = transcode(&input, &out, &["--segment-duration", "0.1"]);
    assert_eq!(run.status.code(), Some(2));
    let run = transcode(&input, &out, &["--ladder", "/nonexistent/ladder.toml"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("/nonexistent/ladder.toml"));
    let run = strata(&["transcode"]);
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn failure_half_way_leaves_no_master() {
    let input = fixture("720p2997-av");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A first, good run publishes a master.
    assert_ok(&transcode(&input, &out, &[]));
    assert!(out.join("master.m3u8").exists());
    // The rerun cannot write its second 360p segment (a directory is in the
    // way), so it fails after the encode has started: the old master must go
    // and no new one may appear.
    let blocker = out.join("video/360p/seg_00002.m4s");
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    let run = transcode(&input, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("seg_00002.m4s"), "{stderr}");
    assert!(!out.join("master.m3u8").exists());
    // Segments written before the failure are still there; the job is simply
    // not published.
    assert!(out.join("video/720p/seg_00001.m4s").exists());
}

#[test]
fn interrupt_stops_cleanly_without_publishing() {
    let input = fixture("1080p30-av");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Interrupt once the first segment is out: the job is under way.
    let mut child = spawn_until(
        &[
            "transcode",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
        &[],
        "\"event\":\"segment\"",
    );
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!out.join("master.m3u8").exists());
}
