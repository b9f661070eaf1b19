//! A real player: the output is served on 127.0.0.1 and played by hls.js in
//! headless Chromium (fixtures/player/play.mjs). Every level is locked in
//! turn and must decode at its advertised size and advance; the end must be
//! reached; no fatal hls.js error.
//!
//! Needs `node`, Debian's `chromium` and `npm install` in fixtures/player,
//! which scripts/test.sh provides.

mod common;

use std::process::Command;

use common::*;

fn play(shape: &str, format: &str) {
    let player = repo_root().join("fixtures/player");
    assert!(
        player.join("node_modules/hls.js").exists()
            && player.join("node_modules/playwright-core").exists(),
        "run `npm install` in {} (scripts/test.sh does) before the playback tests",
        player.display()
    );
    let input = fixture(shape);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_ok(&transcode(&input, &out, &["--format", format]));
    let levels = master(&out).variants.len();

    let run = Command::new("node")
        .arg(player.join("play.mjs"))
        .arg(&out)
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

#[test]
fn plays_cmaf_ladder_in_hlsjs() {
    play("720p2997-av", "cmaf");
}

#[test]
fn plays_ts_ladder_in_hlsjs() {
    play("portrait-av", "ts");
}

#[test]
fn plays_audio_only_in_hlsjs() {
    play("audio-only", "cmaf");
}
