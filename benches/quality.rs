//! criterion: the PSNR and SSIM kernels `strata bench` runs on every
//! decoded frame, on one 1080p and one 360p luma plane.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_engine::metrics::{Plane, mse, ssim};

fn planes(w: usize, h: usize) -> (Vec<u8>, Vec<u8>) {
    let a: Vec<u8> = (0..w * h)
        .map(|i| ((i % w) * 3 + (i / w) * 5) as u8)
        .collect();
    // A deterministic "encoding error" of a few levels.
    let b = a
        .iter()
        .enumerate()
        .map(|(i, v)| v.wrapping_add((i.wrapping_mul(2654435761) >> 29) as u8 % 7))
        .collect();
    (a, b)
}

fn kernels(c: &mut Criterion) {
    for (w, h) in [(1920, 1080), (640, 360)] {
        let (a, b) = planes(w, h);
        let (pa, pb) = (Plane::new(&a, w, h), Plane::new(&b, w, h));
        let mut g = c.benchmark_group(format!("{h}p luma"));
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function("mse (PSNR)", |bench| {
            bench.iter(|| mse(black_box(pa), black_box(pb)))
        });
        g.bench_function("ssim", |bench| {
            bench.iter(|| ssim(black_box(pa), black_box(pb)))
        });
        g.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
