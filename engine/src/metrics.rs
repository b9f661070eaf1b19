//! `metrics`: objective quality of decoded frames against their reference,
//! for `strata bench`. Pure functions over 8-bit luma planes; the caller
//! runs them in parallel over frames.
//!
//! - PSNR-Y: per frame from the mean squared error. The clip's figure is
//!   taken from the mean MSE over all frames, as ffmpeg's `psnr` filter
//!   reports its average, so the two agree.
//! - SSIM-Y: 8×8 windows on a 4-pixel grid (sums kept per 4×4 block, as
//!   x264 and ffmpeg do), constants from Wang et al. 2004.
//! - BD-rate: the average bit-rate difference between two rate–quality
//!   curves over the quality range both cover.

/// Reported instead of infinity for identical planes (JSON has no infinity).
pub const PSNR_IDENTICAL: f64 = 100.0;

/// One 8-bit plane, rows packed without padding.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
}

impl<'a> Plane<'a> {
    pub fn new(data: &'a [u8], width: usize, height: usize) -> Self {
        assert_eq!(data.len(), width * height, "plane size");
        Plane {
            data,
            width,
            height,
        }
    }
}

/// Mean squared error between two planes of the same size.
pub fn mse(a: Plane<'_>, b: Plane<'_>) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "plane sizes differ"
    );
    if a.data.is_empty() {
        return 0.0;
    }
    // Integer sums per row keep this exact and fast.
    let total: u64 = a
        .data
        .chunks(a.width)
        .zip(b.data.chunks(b.width))
        .map(|(ra, rb)| {
            ra.iter()
                .zip(rb)
                .map(|(&x, &y)| {
                    let d = i32::from(x) - i32::from(y);
                    (d * d) as u64
                })
                .sum::<u64>()
        })
        .sum();
    total as f64 / a.data.len() as f64
}

/// PSNR in dB for 8-bit samples, [`PSNR_IDENTICAL`] when `mse` is zero.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 {
        PSNR_IDENTICAL
    } else {
        (10.0 * (255.0f64 * 255.0 / mse).log10()).min(PSNR_IDENTICAL)
    }
}

/// Mean SSIM over 8×8 windows stepped by 4 pixels.
pub fn ssim(a: Plane<'_>, b: Plane<'_>) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "plane sizes differ"
    );
    let (bw, bh) = (a.width / 4, a.height / 4);
    if bw < 2 || bh < 2 {
        // Too small for one window: fall back to a single global window.
        return ssim_window(
            &block_sums(a, b, 0, 0, a.width, a.height),
            a.data.len() as f64,
        );
    }
    // Sums per 4×4 block: Σa, Σb, Σa², Σb², Σab.
    let mut blocks = vec![[0u64; 5]; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            blocks[by * bw + bx] = block_sums(a, b, bx * 4, by * 4, 4, 4);
        }
    }
    let mut total = 0.0;
    for by in 0..bh - 1 {
        for bx in 0..bw - 1 {
            let mut s = [0u64; 5];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let blk = &blocks[(by + dy) * bw + bx + dx];
                for i in 0..5 {
                    s[i] += blk[i];
                }
            }
            total += ssim_window(&s, 64.0);
        }
    }
    total / ((bw - 1) * (bh - 1)) as f64
}

fn block_sums(a: Plane<'_>, b: Plane<'_>, x0: usize, y0: usize, w: usize, h: usize) -> [u64; 5] {
    let mut s = [0u64; 5];
    for y in y0..y0 + h {
        let row = y * a.width;
        for x in x0..x0 + w {
            let (p, q) = (u64::from(a.data[row + x]), u64::from(b.data[row + x]));
            s[0] += p;
            s[1] += q;
            s[2] += p * p;
            s[3] += q * q;
            s[4] += p * q;
        }
    }
    s
}

fn ssim_window(s: &[u64; 5], n: f64) -> f64 {
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (ma, mb) = (s[0] as f64 / n, s[1] as f64 / n);
    let va = s[2] as f64 / n - ma * ma;
    let vb = s[3] as f64 / n - mb * mb;
    let cov = s[4] as f64 / n - ma * mb;
    ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2))
}

/// Per-frame figures, summarised for a clip.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualitySummary {
    pub frames: usize,
    /// From the mean MSE over all frames (ffmpeg's `psnr` average).
    pub psnr_y: f64,
    /// Mean of the per-frame PSNR.
    pub psnr_y_frame_mean: f64,
    pub psnr_y_min: f64,
    pub ssim_y: f64,
    pub ssim_y_min: f64,
}

/// One frame's (MSE, SSIM).
pub type FrameQuality = (f64, f64);

pub fn summarise(frames: &[FrameQuality]) -> QualitySummary {
    let n = frames.len().max(1) as f64;
    let mean_mse = frames.iter().map(|f| f.0).sum::<f64>() / n;
    let psnrs: Vec<f64> = frames.iter().map(|f| psnr_from_mse(f.0)).collect();
    QualitySummary {
        frames: frames.len(),
        psnr_y: psnr_from_mse(mean_mse),
        psnr_y_frame_mean: psnrs.iter().sum::<f64>() / n,
        psnr_y_min: psnrs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .min(PSNR_IDENTICAL),
        ssim_y: frames.iter().map(|f| f.1).sum::<f64>() / n,
        ssim_y_min: frames
            .iter()
            .map(|f| f.1)
            .fold(f64::INFINITY, f64::min)
            .min(1.0),
    }
}

/// Bjøntegaard delta rate of `test` against `anchor`, in percent (negative:
/// `test` needs fewer bits for the same quality). Points are (kbit/s, dB).
/// Log-rate is interpolated piecewise-linearly in quality (works from two
/// points up, where the classic cubic fit needs four) and averaged over the
/// quality range both curves cover. `None` when they do not overlap.
pub fn bd_rate(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Option<f64> {
    let curve = |points: &[(f64, f64)]| -> Option<Vec<(f64, f64)>> {
        let mut c: Vec<(f64, f64)> = points
            .iter()
            .filter(|(r, q)| *r > 0.0 && q.is_finite())
            .map(|&(r, q)| (q, r.ln()))
            .collect();
        c.sort_by(|x, y| x.0.total_cmp(&y.0));
        c.dedup_by(|x, y| x.0 == y.0);
        (c.len() >= 2).then_some(c)
    };
    let (a, t) = (curve(anchor)?, curve(test)?);
    let lo = a[0].0.max(t[0].0);
    let hi = a[a.len() - 1].0.min(t[t.len() - 1].0);
    if hi <= lo {
        return None;
    }
    let avg = |c: &[(f64, f64)]| integrate(c, lo, hi) / (hi - lo);
    Some(((avg(&t) - avg(&a)).exp() - 1.0) * 100.0)
}

/// ∫ of the piecewise-linear curve `c` (sorted by x) from `lo` to `hi`.
fn integrate(c: &[(f64, f64)], lo: f64, hi: f64) -> f64 {
    let at = |x: f64| {
        let i = c.partition_point(|p| p.0 < x).clamp(1, c.len() - 1);
        let (p, q) = (c[i - 1], c[i]);
        p.1 + (q.1 - p.1) * (x - p.0) / (q.0 - p.0)
    };
    let mut xs: Vec<f64> = vec![lo];
    xs.extend(c.iter().map(|p| p.0).filter(|&x| x > lo && x < hi));
    xs.push(hi);
    xs.windows(2)
        .map(|w| (w[1] - w[0]) * (at(w[0]) + at(w[1])) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    #[test]
    fn identical_planes() {
        let a = plane(64, 48, |x, y| ((x * 7 + y * 3) % 256) as u8);
        let p = Plane::new(&a, 64, 48);
        assert_eq!(mse(p, p), 0.0);
        assert_eq!(psnr_from_mse(0.0), PSNR_IDENTICAL);
        assert!((ssim(p, p) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_mse_and_psnr() {
        // Every sample off by 5: MSE 25, PSNR 10·log10(255²/25) = 34.15 dB.
        let a = plane(32, 32, |x, _| (x * 4) as u8);
        let b: Vec<u8> = a.iter().map(|v| v + 5).collect();
        let m = mse(Plane::new(&a, 32, 32), Plane::new(&b, 32, 32));
        assert_eq!(m, 25.0);
        assert!((psnr_from_mse(m) - 34.1514).abs() < 1e-3);
        // Clip PSNR comes from the mean MSE, not the mean of frame PSNRs.
        let s = summarise(&[(25.0, 0.9), (100.0, 0.8)]);
        assert!((s.psnr_y - psnr_from_mse(62.5)).abs() < 1e-9);
        assert!(s.psnr_y_frame_mean > s.psnr_y);
        assert_eq!(s.psnr_y_min, psnr_from_mse(100.0));
        assert!((s.ssim_y - 0.85).abs() < 1e-12 && s.ssim_y_min == 0.8);
    }

    #[test]
    fn ssim_falls_with_noise_and_ignores_a_constant_shift_less() {
        let a = plane(64, 64, |x, y| ((x * 3 + y * 5) % 200) as u8);
        let shifted: Vec<u8> = a.iter().map(|v| v + 10).collect();
        let noisy: Vec<u8> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v.wrapping_add(((i * 7919) % 41) as u8))
            .collect();
        let p = Plane::new(&a, 64, 64);
        let s_shift = ssim(p, Plane::new(&shifted, 64, 64));
        let s_noise = ssim(p, Plane::new(&noisy, 64, 64));
        assert!(s_shift > 0.95, "{s_shift}");
        assert!(s_noise < s_shift, "{s_noise} vs {s_shift}");
    }

    #[test]
    fn bd_rate_of_a_curve_against_itself_and_a_cheaper_one() {
        let anchor = [
            (500.0, 32.0),
            (1000.0, 35.0),
            (2000.0, 38.0),
            (4000.0, 41.0),
        ];
        assert!(bd_rate(&anchor, &anchor).unwrap().abs() < 1e-9);
        // The same qualities at 80 % of the bits: -20 %.
        let cheaper: Vec<_> = anchor.iter().map(|&(r, q)| (r * 0.8, q)).collect();
        assert!((bd_rate(&anchor, &cheaper).unwrap() + 20.0).abs() < 1e-6);
        // No common quality range: no answer.
        assert_eq!(bd_rate(&anchor, &[(100.0, 10.0), (200.0, 12.0)]), None);
        assert_eq!(bd_rate(&anchor, &[(100.0, 33.0)]), None);
    }
}
