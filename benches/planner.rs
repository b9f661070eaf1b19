//! criterion: planning a job (pure: ladder fit, encoder choice, properties,
//! GPU/CPU chains) for a CPU-only machine and a full NVIDIA one.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_engine::caps::Capabilities;
use strata_engine::probe::{AudioStream, Probe, Ratio, VideoStream, display_aspect};
use strata_engine::{HwChoice, JobSpec, plan};

fn probe_1080p() -> Probe {
    Probe {
        path: "lecture.mp4".into(),
        container: Some("video/quicktime".into()),
        duration: Duration::from_secs(3600),
        video: Some(VideoStream {
            codec: "H.264".into(),
            caps_name: "video/x-h264".into(),
            width: 1920,
            height: 1080,
            pixel_aspect: Ratio::new(1, 1),
            display_aspect: display_aspect(1920, 1080, Ratio::new(1, 1)),
            frame_rate: Some(Ratio::new(30, 1)),
            interlaced: false,
            bitrate: None,
        }),
        audio: Some(AudioStream {
            codec: "AAC".into(),
            caps_name: "audio/mpeg".into(),
            sample_rate: 48000,
            channels: 2,
            bitrate: None,
        }),
    }
}

fn planner(c: &mut Criterion) {
    let probe = probe_1080p();
    let job = JobSpec::default();
    let cpu = Capabilities::from_names(&["x264enc", "openh264enc", "avenc_aac", "avdec_h264"]);
    let nvidia = Capabilities::from_names(&[
        "x264enc",
        "avenc_aac",
        "avdec_h264",
        "nvh264dec",
        "cudascale",
        "nvcudah264enc",
    ]);
    c.bench_function("plan 1080p, 4 rungs, CPU", |b| {
        b.iter(|| plan(black_box(&probe), black_box(&job), black_box(&cpu)).unwrap())
    });
    let gpu_job = JobSpec {
        hw: HwChoice::Nvidia,
        ..JobSpec::default()
    };
    c.bench_function("plan 1080p, 4 rungs, NVIDIA + chains", |b| {
        b.iter(|| {
            let p = plan(black_box(&probe), black_box(&gpu_job), black_box(&nvidia)).unwrap();
            let v = p.video.unwrap();
            black_box((
                v.trunk(),
                v.renditions.iter().map(|r| v.branch(r)).collect::<Vec<_>>(),
            ))
        })
    });
}

criterion_group!(benches, planner);
criterion_main!(benches);
