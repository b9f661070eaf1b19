//! criterion: rendering the playlists of a two-hour lecture (1200 six-second
//! segments per rendition) and its multivariant playlist.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_packager::playlist::{
    AudioRendition, MediaPlaylist, Multivariant, PlaylistSegment, Variant,
};

fn playlists(c: &mut Criterion) {
    let media = MediaPlaylist {
        segments: (1..=1200)
            .map(|n| PlaylistSegment {
                uri: format!("seg_{n:05}.m4s"),
                duration: 6.006,
            })
            .collect(),
        map: Some("init.mp4".into()),
        target_duration: None,
    };
    c.bench_function("media playlist, 1200 segments", |b| {
        b.iter(|| black_box(&media).render().unwrap())
    });
    let master = Multivariant {
        variants: [
            (1920, 1080, 5_000_000),
            (1280, 720, 2_800_000),
            (854, 480, 1_400_000),
            (640, 360, 800_000),
        ]
        .into_iter()
        .map(|(w, h, bw)| Variant {
            uri: format!("video/{h}p/index.m3u8"),
            bandwidth: bw + 128_000,
            average_bandwidth: bw * 9 / 10,
            codecs: "avc1.640028,mp4a.40.2".into(),
            resolution: Some((w, h)),
            frame_rate: Some(30.0),
            audio_group: Some("aac".into()),
        })
        .collect(),
        audio: vec![AudioRendition {
            group: "aac".into(),
            name: "aac_128k".into(),
            uri: "audio/aac_128k/index.m3u8".into(),
            channels: 2,
        }],
        version: 6,
        session_data: vec![("com.strata.slides".into(), "slides/slides.json".into())],
    };
    c.bench_function("multivariant, 4 variants + audio", |b| {
        b.iter(|| black_box(&master).render().unwrap())
    });
}

criterion_group!(benches, playlists);
criterion_main!(benches);
