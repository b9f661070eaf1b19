//! End to end: generated media of several shapes through the real binary,
//! with the output checked independently (m3u8-rs parsing, ffprobe).

mod common;

use std::path::Path;

use common::*;

struct Expect<'a> {
    shape: &'a str,
    format: &'a str,
    resolutions: &'a [(u64, u64)],
    audio: bool,
    /// Nominal frame rate the variants must advertise (None: measured/VFR).
    frame_rate: Option<f64>,
}

fn check(e: Expect) {
    let input = fixture(e.shape);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = transcode(
        &input,
        &out,
        &["--format", e.format, "--segment-duration", "4"],
    );
    assert_ok(&run);
    let m = master(&out);

    // Rung selection.
    let res: Vec<(u64, u64)> = m
        .variants
        .iter()
        .filter_map(|v| v.resolution.map(|r| (r.width, r.height)))
        .collect();
    assert_eq!(res, e.resolutions, "{}: rungs", e.shape);

    let audio_dir = m.alternatives.first().and_then(|a| a.uri.clone());
    assert_eq!(
        audio_dir.is_some(),
        e.audio && !e.resolutions.is_empty(),
        "{}: audio group",
        e.shape
    );

    let mut video_extinfs: Option<Vec<f32>> = None;
    let mut first_video_pts = None;
    for v in &m.variants {
        let pl_path = out.join(&v.uri);
        let pl = media(&pl_path);
        // RFC 8216: VOD, ENDLIST, TARGETDURATION >= every rounded EXTINF.
        assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert!(pl.end_list && pl.independent_segments);
        for s in &pl.segments {
            assert!(
                (s.duration.round() as u64) <= pl.target_duration,
                "{}: {} > target",
                v.uri,
                s.duration
            );
        }
        let expected_version = if e.format == "cmaf" { 6 } else { 3 };
        assert_eq!(pl.version, Some(expected_version));
        assert_eq!(pl.segments[0].map.is_some(), e.format == "cmaf");

        // Measured bandwidth agrees with the files (within 10 %), video + audio.
        let (peak, avg) = measured_bitrates(&pl_path, &pl);
        let (a_peak, a_avg) = match &audio_dir {
            Some(a) => {
                let ap = out.join(a);
                measured_bitrates(&ap, &media(&ap))
            }
            None => (0.0, 0.0),
        };
        let within = |advertised: u64, measured: f64| {
            (advertised as f64 - measured).abs() <= 0.10 * measured
        };
        assert!(
            within(v.bandwidth, peak + a_peak),
            "{}: BANDWIDTH {} vs {}",
            v.uri,
            v.bandwidth,
            peak + a_peak
        );
        let ab = v.average_bandwidth.unwrap();
        assert!(
            within(ab, avg + a_avg),
            "{}: AVERAGE-BANDWIDTH {ab} vs {}",
            v.uri,
            avg + a_avg
        );

        let codecs = v.codecs.clone().unwrap();
        if let Some(r) = v.resolution {
            // Every segment starts on a keyframe.
            for i in 0..pl.segments.len() {
                let seg = playable_segment(&pl_path, &pl, i);
                let frames = first_frames(&seg, 1);
                assert!(
                    frames[0].1,
                    "{} segment {} does not start on a keyframe",
                    v.uri,
                    i + 1
                );
                if i == 0 {
                    first_video_pts.get_or_insert(frames[0].0);
                }
            }
            // Same boundaries in every rung.
            let extinfs: Vec<f32> = pl.segments.iter().map(|s| s.duration).collect();
            match &video_extinfs {
                None => video_extinfs = Some(extinfs),
                Some(first) => assert_eq!(first, &extinfs, "{}: boundaries differ", v.uri),
            }
            // CODECS, RESOLUTION and FRAME-RATE match the stream.
            let info = stream_info(&playable_segment(&pl_path, &pl, 0));
            assert_eq!(
                (
                    info["width"].as_u64().unwrap(),
                    info["height"].as_u64().unwrap()
                ),
                (r.width, r.height)
            );
            let level = info["level"].as_u64().unwrap();
            let video_codec = codecs.split(',').next().unwrap();
            assert!(video_codec.starts_with("avc1."), "{codecs}");
            let profile_idc = u64::from_str_radix(&video_codec[5..7], 16).unwrap();
            let profile = info["profile"].as_str().unwrap();
            let expected_idc = match profile {
                "High" => 100,
                "Main" => 77,
                p if p.contains("Baseline") => 66,
                p => panic!("unexpected profile {p}"),
            };
            assert_eq!(profile_idc, expected_idc, "{codecs} vs {profile}");
            assert_eq!(
                u64::from_str_radix(&video_codec[9..11], 16).unwrap(),
                level,
                "{codecs} vs level {level}"
            );
            let fps = v.frame_rate.expect("FRAME-RATE");
            match e.frame_rate {
                Some(nominal) => {
                    assert!(
                        (fps - nominal).abs() < 0.01,
                        "FRAME-RATE {fps} vs {nominal}"
                    );
                    assert!(
                        (rational(info["r_frame_rate"].as_str().unwrap()) - nominal).abs() < 0.01
                    );
                }
                None => assert!(fps > 0.0 && fps <= 60.0),
            }
            // Total duration within one frame of the input's video.
            let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
            let input_dur = input_stream_duration(&input, "video");
            let frame = 1.0 / e.frame_rate.unwrap_or(10.0);
            assert!(
                (total - input_dur).abs() <= frame + 0.002,
                "{}: {total} vs input {input_dur}",
                v.uri
            );
        }
        if e.audio {
            assert!(codecs.ends_with("mp4a.40.2"), "{codecs}");
        }
    }

    if e.audio {
        let a_uri = audio_dir
            .clone()
            .unwrap_or_else(|| m.variants[0].uri.clone());
        let ap = out.join(&a_uri);
        let pl = media(&ap);
        let info = stream_info(&playable_segment(&ap, &pl, 0));
        assert_eq!(info["codec_name"], "aac");
        assert_eq!(info["sample_rate"], "48000");
        assert_eq!(info["channels"], 2);
        let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
        let input_dur = input_stream_duration(&input, "audio");
        // One AAC frame is 1024 samples.
        assert!(
            (total - input_dur).abs() <= 1024.0 / 48000.0 + 0.002,
            "audio {total} vs input {input_dur}"
        );
        if let Some(v) = first_video_pts {
            let a = first_frames(&playable_segment(&ap, &pl, 0), 1)[0].0;
            assert!((a - v).abs() <= 0.050, "audio starts at {a}, video at {v}");
        }
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["checks"]["verify"], "passed");
    let checks = report["checks"]["passed"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c == "segments_start_on_keyframes"),
        "{checks:?}"
    );
    assert_eq!(
        checks.iter().any(|c| c == "audio_video_start_together"),
        e.audio && !e.resolutions.is_empty()
    );
    assert_eq!(
        report["renditions"].as_array().unwrap().len(),
        e.resolutions.len() + usize::from(e.audio)
    );
    // This machine has no GPU: the report says the CPU did the work.
    let hw = &report["hardware"];
    assert_eq!(hw["requested"], "auto");
    if !e.resolutions.is_empty() {
        assert_eq!(hw["decoder"], "software");
        assert_eq!(hw["frames_in"], "system");
        for r in hw["video"].as_array().unwrap() {
            assert_eq!(r["encoder"], "x264enc", "{hw}");
            assert_eq!(r["vendor"], serde_json::Value::Null);
            assert_eq!(r["scaler"], "videoscale");
        }
    }
}

/// Peak and average bit rate of a media playlist's segments, from the files.
fn measured_bitrates(pl_path: &Path, pl: &m3u8_rs::MediaPlaylist) -> (f64, f64) {
    let dir = pl_path.parent().unwrap();
    let mut peak: f64 = 0.0;
    let (mut bytes, mut secs) = (0u64, 0f64);
    for s in &pl.segments {
        let size = std::fs::metadata(dir.join(&s.uri)).unwrap().len();
        peak = peak.max(size as f64 * 8.0 / f64::from(s.duration));
        bytes += size;
        secs += f64::from(s.duration);
    }
    (peak, bytes as f64 * 8.0 / secs)
}

#[test]
fn hd_1080p30_with_audio() {
    check(Expect {
        shape: "1080p30-av",
        format: "cmaf",
        resolutions: &[(1920, 1080), (1280, 720), (854, 480), (640, 360)],
        audio: true,
        frame_rate: Some(30.0),
    });
}

#[test]
fn hd_720p_2997() {
    check(Expect {
        shape: "720p2997-av",
        format: "cmaf",
        resolutions: &[(1280, 720), (854, 480), (640, 360)],
        audio: true,
        frame_rate: Some(30000.0 / 1001.0),
    });
}

#[test]
fn hd_720p_2997_as_mpeg_ts() {
    check(Expect {
        shape: "720p2997-av",
        format: "ts",
        resolutions: &[(1280, 720), (854, 480), (640, 360)],
        audio: true,
        frame_rate: Some(30000.0 / 1001.0),
    });
}

#[test]
fn portrait() {
    check(Expect {
        shape: "portrait-av",
        format: "cmaf",
        resolutions: &[(720, 1280), (480, 854), (360, 640)],
        audio: true,
        frame_rate: Some(30.0),
    });
}

#[test]
fn anamorphic_4_3_comes_out_square() {
    check(Expect {
        shape: "anamorphic43-av",
        format: "cmaf",
        resolutions: &[(640, 480), (480, 360)],
        audio: true,
        frame_rate: Some(25.0),
    });
}

#[test]
fn audio_only() {
    check(Expect {
        shape: "audio-only",
        format: "cmaf",
        resolutions: &[],
        audio: true,
        frame_rate: None,
    });
}

#[test]
fn audio_only_as_mpeg_ts() {
    check(Expect {
        shape: "audio-only",
        format: "ts",
        resolutions: &[],
        audio: true,
        frame_rate: None,
    });
}

#[test]
fn video_only() {
    check(Expect {
        shape: "video-only",
        format: "cmaf",
        resolutions: &[(640, 360)],
        audio: false,
        frame_rate: Some(25.0),
    });
}

#[test]
fn variable_frame_rate() {
    check(Expect {
        shape: "vfr-v",
        format: "cmaf",
        resolutions: &[(640, 480), (480, 360)],
        audio: false,
        frame_rate: None,
    });
}

#[test]
fn interlaced_is_deinterlaced() {
    let input = fixture("interlaced-av");
    let probe = strata(&["probe", "--json", input.to_str().unwrap()]);
    assert_ok(&probe);
    let p: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(p["video"]["interlaced"], true);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_ok(&transcode(&input, &out, &[]));
    let m = master(&out);
    let first = out.join(&m.variants[0].uri);
    let pl = media(&first);
    let seg = playable_segment(&first, &pl, 0);
    let v = ffprobe_json(
        &seg,
        &[
            "-show_entries",
            "frame=interlaced_frame",
            "-read_intervals",
            "%+#5",
        ],
    );
    assert!(
        v["frames"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["interlaced_frame"] == 0),
        "{v}"
    );
}

#[test]
fn caps_reports_cpu_encoders_verified_and_no_gpu() {
    let o = strata(&["caps", "--json"]);
    assert_ok(&o);
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let elements = caps["elements"].as_array().unwrap();
    let find = |name: &str| {
        elements
            .iter()
            .find(|e| e["element"] == name)
            .unwrap_or_else(|| panic!("no {name} in {caps}"))
    };
    for name in [
        "x264enc",
        "openh264enc",
        "avenc_aac",
        "avdec_h264",
        "videoscale",
    ] {
        assert_eq!(find(name)["verified"], true, "{name}");
        assert_eq!(find(name)["vendor"], serde_json::Value::Null, "{name}");
    }
    assert_eq!(find("x264enc")["kind"], "videoencoder");
    // This machine has no GPU, so no hardware element is listed.
    assert!(
        elements.iter().all(|e| e["vendor"].is_null()),
        "hardware listed on a machine without a GPU: {caps}"
    );
    let text = strata(&["caps"]);
    assert_ok(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("x264enc") && l.contains(" yes ")),
        "{text}"
    );
    assert!(text.contains("no GPU"), "{text}");

    // Asking for hardware that is not there is a usage error naming it.
    let out = tempfile::tempdir().unwrap();
    let o = strata(&[
        "transcode",
        fixture("video-only").to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--hw",
        "nvidia",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--hw nvidia") && err.contains("strata caps"),
        "{err}"
    );
    assert!(!out.path().join("master.m3u8").exists());
}

#[test]
fn probe_reports_streams() {
    let input = fixture("720p2997-av");
    let out = strata(&["probe", "--json", input.to_str().unwrap()]);
    assert_ok(&out);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["video"]["width"], 1280);
    assert_eq!(p["video"]["frame_rate"]["num"], 30000);
    assert_eq!(p["video"]["frame_rate"]["den"], 1001);
    assert_eq!(p["audio"]["channels"], 2);
    assert!((p["duration"].as_f64().unwrap() - 13.0).abs() < 0.1);
    let text = strata(&["probe", input.to_str().unwrap()]);
    assert_ok(&text);
    assert!(String::from_utf8_lossy(&text.stdout).contains("29.970 fps (30000/1001)"));
}

#[test]
fn ladder_from_toml_and_json_events() {
    let input = fixture("video-only");
    let dir = tempfile::tempdir().unwrap();
    let ladder = dir.path().join("ladder.toml");
    std::fs::write(
        &ladder,
        "name = \"small\"\n[[rung]]\nname = \"low\"\nheight = 240\nbitrate_kbps = 300\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = transcode(
        &input,
        &out,
        &["--ladder", ladder.to_str().unwrap(), "--json"],
    );
    assert_ok(&run);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["event"], "probe");
    assert!(lines.iter().any(|l| l["event"] == "segment"));
    assert_eq!(lines.last().unwrap()["event"], "done");
    let m = master(&out);
    assert_eq!(m.variants.len(), 1);
    assert_eq!(
        m.variants[0].resolution.map(|r| (r.width, r.height)),
        Some((426, 240))
    );
    assert!(out.join("video/low/index.m3u8").exists());
}
