//! A real player: the output is served on 127.0.0.1 and played by hls.js in
//! headless Chromium (fixtures/player/play.mjs). Every level is locked in
//! turn and must decode at its advertised size and advance; the end must be
//! reached; no fatal hls.js error.
//!
//! Needs `node`, Debian's `chromium` and `npm install` in fixtures/player,
//! which scripts/test.sh provides.

mod common;

use common::*;

fn play(shape: &str, format: &str) {
    let input = fixture(shape);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_ok(&transcode(&input, &out, &["--format", format]));
    assert_plays(&out);
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
