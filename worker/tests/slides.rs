//! Decks made by python-pptx (and bad ones made by hand) through
//! `strata slides` and `strata transcode --slides`, with LibreOffice and
//! hayro for real.

mod common;

use std::path::Path;

use common::*;

/// `strata slides` on a generated deck into `out`; its slides.json.
fn render_deck(shape: &str, out: &Path) -> serde_json::Value {
    assert_ok(&strata(&[
        "slides",
        deck(shape).to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    slides_json(out)
}

fn slides_json(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("slides/slides.json")).unwrap()).unwrap()
}

/// (width, height) from a PNG's IHDR.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// The RGB value at (x, y) of an image, decoded by ffmpeg.
fn pixel(path: &Path, x: u32, y: u32) -> [u8; 3] {
    let o = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            &format!("crop=1:1:{x}:{y}"),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(o.status.success(), "{o:?}");
    o.stdout[..3].try_into().unwrap()
}

/// (width, height) from a JPEG's SOF marker.
fn jpeg_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..2], [0xFF, 0xD8], "{} is not a JPEG", path.display());
    let mut i = 2;
    while i + 9 < b.len() {
        let (marker, len) = (
            b[i + 1],
            usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]])),
        );
        if (0xC0..=0xC2).contains(&marker) {
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
            return (u32::from(w), u32::from(h));
        }
        i += 2 + len;
    }
    panic!("no SOF in {}", path.display());
}

fn times_file(dir: &Path, times: &str) -> String {
    let p = dir.join("times.json");
    std::fs::write(&p, times).unwrap();
    p.display().to_string()
}

#[test]
fn a_pptx_becomes_images_thumbnails_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let j = render_deck("lecture", &out);
    let slides = j["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 5, "{j}");
    assert_eq!(j["kind"], "pptx");
    assert!(j["timing"].is_null() && j["stream"].is_null() && j["vtt"].is_null());
    for s in slides {
        assert_eq!(
            png_size(&out.join("slides").join(s["image"].as_str().unwrap())),
            (1920, 1080)
        );
        assert_eq!(
            jpeg_size(&out.join("slides").join(s["thumbnail"].as_str().unwrap())),
            (320, 180)
        );
        assert!(
            s["start"].is_null() && s["end"].is_null(),
            "no times given: {s}"
        );
    }
    let titles: Vec<&str> = slides
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Signals and Systems",
            "Outline",
            "A spectrum",
            "Transform pairs",
            "Questions"
        ]
    );
    assert_eq!(
        slides[1]["body"],
        "Periodic signals\nThe transform pair\nConvolution"
    );
    assert_eq!(
        slides[3]["body"], "x(t)\tX(f)\nrect\tsinc\ngauss\tgauss",
        "table text"
    );
    assert_eq!(slides[0]["notes"], "Welcome everyone.");
    assert_eq!(slides[2]["notes"], "Point at the red block.");
    // The picture on slide 3 is red (200, 40, 40) where python-pptx put it:
    // 3 to 9 inches across a 13.33-inch slide, 2 to 6.5 inches down.
    assert_eq!(
        pixel(&out.join("slides/slide_003.png"), 864, 612),
        [200, 40, 40]
    );
    assert_eq!(
        pixel(&out.join("slides/slide_003.png"), 100, 1000),
        [255, 255, 255]
    );
    assert!(!out.join("slides/slides.vtt").exists(), "no times, no cues");
}

#[test]
fn odp_and_legacy_ppt_decks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("odp");
    let j = render_deck("lecture-odp", &out);
    assert_eq!(j["kind"], "odp");
    let slides = j["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 5);
    assert_eq!(slides[1]["title"], "Outline");
    assert!(
        slides[1]["body"]
            .as_str()
            .unwrap()
            .contains("The transform pair"),
        "{j}"
    );
    assert_eq!(slides[2]["notes"], "Point at the red block.");
    assert_eq!(png_size(&out.join("slides/slide_005.png")), (1920, 1080));

    // Legacy .ppt: rendered through LibreOffice; its binary text is not read.
    let out = dir.path().join("ppt");
    let j = render_deck("lecture-ppt", &out);
    assert_eq!(j["kind"], "ppt");
    assert_eq!(j["slides"].as_array().unwrap().len(), 5);
    assert!(j["slides"][0]["title"].is_null());
}

#[test]
fn a_pdf_deck_and_auto_advance_times() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pdf");
    let j = render_deck("three-pdf", &out);
    assert_eq!(j["kind"], "pdf");
    assert_eq!(j["slides"].as_array().unwrap().len(), 3);
    // 960x540 pt pages: exactly 1920x1080.
    assert_eq!(png_size(&out.join("slides/slide_003.png")), (1920, 1080));

    let out = dir.path().join("auto");
    let j = render_deck("lecture-auto", &out);
    assert_eq!(j["timing"], "auto-advance");
    let starts: Vec<f64> = j["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_f64().unwrap())
        .collect();
    assert_eq!(starts, [0.0, 3.0, 6.0, 9.0, 12.0]);
    let vtt = std::fs::read_to_string(out.join("slides/slides.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    assert!(
        vtt.contains("00:00:03.000 --> 00:00:06.000\n{\"image\":\"slide_002.png\",\"slide\":2,"),
        "{vtt}"
    );
    let chapters = std::fs::read_to_string(out.join("slides/chapters.vtt")).unwrap();
    assert!(chapters.contains("\nTransform pairs\n"), "{chapters}");
}

#[test]
fn transcode_with_slides_publishes_a_timed_slide_stream() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let times = times_file(
        dir.path(),
        r#"[{"slide":1,"at":0},{"slide":2,"at":3},{"slide":3,"at":5.5},{"slide":4,"at":8},{"slide":5,"at":11}]"#,
    );
    let input = fixture("1080p30-av");
    let o = strata(&[
        "transcode",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--slides",
        deck("lecture").to_str().unwrap(),
        "--slide-times",
        &times,
    ]);
    assert_ok(&o);
    // The master names slides.json through EXT-X-SESSION-DATA.
    let m = master(&out);
    let session = m.session_data.first().expect("EXT-X-SESSION-DATA");
    assert_eq!(session.data_id, "com.strata.slides");
    assert_eq!(
        session.field,
        m3u8_rs::SessionDataField::Uri("slides/slides.json".into())
    );

    let j = slides_json(&out);
    assert_eq!(j["timing"], "slide-times");
    assert_eq!(j["stream"], "master.m3u8");
    let spans: Vec<(f64, f64)> = j["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        spans[..4],
        [(0.0, 3.0), (3.0, 5.5), (5.5, 8.0), (8.0, 11.0)]
    );
    assert_eq!(spans[4].0, 11.0);
    let duration = input_stream_duration(&input, "video");
    assert!(
        (spans[4].1 - duration).abs() < 0.1,
        "last slide ends with the recording"
    );
    let vtt = std::fs::read_to_string(out.join("slides/slides.vtt")).unwrap();
    assert_eq!(vtt.matches(" --> ").count(), 5, "{vtt}");

    // The slide stream: its own multivariant, segments on the ladder's
    // boundaries, a keyframe at every slide change.
    let slides_out = out.join("slides");
    let stream = master(&slides_out);
    assert_eq!(stream.variants.len(), 1);
    let pl_path = slides_out.join(&stream.variants[0].uri);
    let pl = media(&pl_path);
    let main = media(&out.join("video/720p/index.m3u8"));
    let ends = |p: &m3u8_rs::MediaPlaylist| -> Vec<f64> {
        p.segments
            .iter()
            .scan(0.0, |t, s| {
                *t += f64::from(s.duration);
                Some((*t * 1000.0).round() / 1000.0)
            })
            .collect()
    };
    let (a, b) = (ends(&pl), ends(&main));
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    assert_eq!(
        a[..a.len() - 1],
        b[..b.len() - 1],
        "segment boundaries differ"
    );
    let mut keyframes = Vec::new();
    for i in 0..pl.segments.len() {
        keyframes.extend(
            first_frames(&playable_segment(&pl_path, &pl, i), 10_000)
                .into_iter()
                .filter(|f| f.1)
                .map(|f| (f.0 * 10.0).round() / 10.0),
        );
    }
    for change in [0.0, 3.0, 6.0, 8.0, 11.0] {
        // 5.5 s lands on the next frame of the 1 fps stream: 6 s.
        assert!(
            keyframes.contains(&change),
            "no keyframe at {change}: {keyframes:?}"
        );
    }
    assert_plays(&slides_out);
    assert_plays(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["slides"]["slides"], 5);
}

#[test]
fn bad_decks_are_named_and_fail_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    for (shape, says) in [
        ("bad-zip", "corrupt zip container"),
        ("bad-encrypted", "password-protected"),
        ("bad-ppt", "LibreOffice could not open"),
        ("bad-empty-pdf", "has no pages"),
        ("bad-bomb", "zip bomb"),
    ] {
        let path = deck(shape);
        let out = dir.path().join(shape);
        let o = strata(&[
            "slides",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(3), "{shape}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(says),
            "{shape}: {err}"
        );
    }
    let o = strata(&[
        "slides",
        deck("deck20").to_str().unwrap(),
        "-o",
        dir.path().join("limit").to_str().unwrap(),
        "--max-slides",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("20 slides is over the limit of 10"));

    // LibreOffice past its time is killed, with its helpers: none is left.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["slides", deck("lecture").to_str().unwrap(), "-o"])
        .arg(dir.path().join("slow"))
        .args(["--convert-timeout", "0.5"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did not finish converting within 0.50 s"),
        "{o:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("strata-soffice-{pid}-")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "LibreOffice left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    // In a transcode the video is not published beside a broken deck.
    let out = dir.path().join("job");
    let o = strata(&[
        "transcode",
        fixture("video-only").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--slides",
        deck("bad-encrypted").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(!out.join("master.m3u8").exists());
    assert!(
        !out.join("video").exists(),
        "nothing of the ladder was written"
    );
}
