//! `strata bench` on generated media: the reports it writes, and its PSNR
//! against ffmpeg's `psnr` filter on the same pair of files.

mod common;

use common::*;

/// ffmpeg's average PSNR-Y of `distorted` against `reference`.
fn ffmpeg_psnr_y(distorted: &std::path::Path, reference: &std::path::Path) -> f64 {
    let o = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(distorted)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", "[0:v][1:v]psnr=shortest=1", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&o.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("PSNR y:"))
        .unwrap_or_else(|| panic!("no PSNR line from ffmpeg:\n{text}"));
    line.split("y:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn bench_writes_reports_and_agrees_with_ffmpeg_psnr() {
    let input = fixture("video-only"); // 640x360, 25 fps, 8-bit 4:2:0
    let dir = tempfile::tempdir().unwrap();
    let ladder = dir.path().join("ladder.toml");
    std::fs::write(
        &ladder,
        "name = \"bench\"\n[[rung]]\nname = \"360p\"\nheight = 360\nbitrate_kbps = 300\n\
         [[rung]]\nname = \"240p\"\nheight = 240\nbitrate_kbps = 150\n",
    )
    .unwrap();
    let out = dir.path().join("bench");
    let o = strata(&[
        "bench",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--encoders",
        "x264:ultrafast,openh264",
        "--ladder",
        ladder.to_str().unwrap(),
        "--duration",
        "4",
    ]);
    assert_ok(&o);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 encoders x 2 rungs: {report}");
    for row in rows {
        let q = &row["quality"];
        assert_eq!(q["frames"], 100, "4 s at 25 fps: {row}");
        assert!(q["psnr_y"].as_f64().unwrap() > 30.0, "{row}");
        assert!(
            (0.9..=1.0).contains(&q["ssim_y"].as_f64().unwrap()),
            "{row}"
        );
        assert!(row["fps"].as_f64().unwrap() > 0.0 && row["bitrate_kbps"].as_f64().unwrap() > 0.0);
        assert!(row["cpu_secs"].as_f64().unwrap() > 0.0);
        assert!(row["vmaf"].is_null(), "Debian's ffmpeg has no libvmaf");
    }
    assert_eq!(report["anchor"], "x264:ultrafast");
    assert_eq!(
        report["bd_rate"][0]["psnr_y_percent"], 0.0,
        "the anchor against itself"
    );
    assert!(report["vmaf"].as_str().unwrap().starts_with("unavailable"));

    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("| encoder | rung | size | fps |"), "{md}");
    assert!(md.contains("| openh264 | 240p | 426x240 |"), "{md}");
    assert!(md.contains("BD-rate against x264:ultrafast"), "{md}");
    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("x264:ultrafast") && svg.contains("openh264"));

    // The 360p rung is the source's own size: the same pair of files
    // through ffmpeg's psnr filter gives the same figure.
    for (dir_name, encoder) in [
        ("x264-ultrafast", "x264:ultrafast"),
        ("openh264", "openh264"),
    ] {
        let ours = rows
            .iter()
            .find(|r| r["encoder"] == encoder && r["rung"] == "360p")
            .unwrap()["quality"]["psnr_y"]
            .as_f64()
            .unwrap();
        let theirs = ffmpeg_psnr_y(&out.join(dir_name).join("360p.mp4"), &input);
        assert!(
            (ours - theirs).abs() < 0.1,
            "{encoder}: strata {ours:.3} dB, ffmpeg {theirs:.3} dB"
        );
    }
}

#[test]
fn bench_rejects_unknown_encoders_and_audio_only_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let o = strata(&[
        "bench",
        fixture("video-only").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--encoders",
        "x264,vp8",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown encoder \"vp8\""));
    let o = strata(&[
        "bench",
        fixture("audio-only").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no video stream"));
}
