//! `strata bench`: every encoder on every rung of a ladder, on the user's
//! own input. For each (encoder, rung): encode, decode, compare with the
//! source scaled to the rung (`engine::bench`), then summarise as JSON, a
//! Markdown table and an SVG rate–quality plot (plotters), with BD-rate of
//! each encoder against the first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use strata_engine::bench::{self, EncodeStats, Target};
use strata_engine::metrics::{self, QualitySummary};
use strata_engine::{Ladder, Rung};

use crate::cli::BenchArgs;
use crate::{InputError, UsageError};

#[derive(Debug, Serialize)]
struct Row {
    encoder: String,
    element: String,
    rung: String,
    width: u32,
    height: u32,
    target_kbps: u32,
    bitrate_kbps: f64,
    fps: f64,
    cpu_secs: f64,
    encode: EncodeStats,
    quality: QualitySummary,
    /// `None` where ffmpeg has no libvmaf.
    vmaf: Option<f64>,
    file: PathBuf,
}

#[derive(Debug, Serialize)]
struct BdRate {
    encoder: String,
    /// Percent bits against the anchor for equal PSNR-Y (negative: fewer).
    psnr_y_percent: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    input: String,
    duration_limit_secs: Option<f64>,
    anchor: String,
    rows: Vec<Row>,
    bd_rate: Vec<BdRate>,
    vmaf: &'static str,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    strata_engine::init()?;
    let encoders: Vec<String> = args
        .encoders
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if encoders.is_empty() {
        bail!(UsageError("--encoders names no encoder".into()));
    }
    let limit = match args.duration {
        Some(d) if !(d.is_finite() && d > 0.0) => {
            bail!(UsageError(format!(
                "--duration {d} must be a positive number of seconds"
            )))
        }
        d => d.map(Duration::from_secs_f64),
    };
    let ladder = Ladder::resolve(&args.ladder).map_err(|e| UsageError(e.to_string()))?;
    let probe = strata_engine::probe(&args.input)?;
    let Some(video) = &probe.video else {
        bail!(InputError(format!(
            "{}: no video stream to benchmark",
            args.input.display()
        )));
    };
    let rungs = ladder.select(video);
    let fps = ladder.output_fps(video);
    let rate = fps
        .or(video.frame_rate)
        .map_or(30.0, |r| r.as_f64())
        .min(f64::from(ladder.max_fps));
    // Two 6 s segments' worth, as the transcode plans it.
    let gop = (rate * 12.0).ceil() as u32;
    // Check every name before spending minutes on the first.
    for name in &encoders {
        let config =
            bench::encoder_by_name(name, 1000, gop).map_err(|e| UsageError(e.to_string()))?;
        if !strata_engine::caps::installed(&config.element) {
            bail!(UsageError(format!(
                "encoder {name}: GStreamer element {} is not installed here (see `strata caps`)",
                config.element
            )));
        }
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let vmaf_available = has_libvmaf();

    let mut rows = Vec::new();
    for name in &encoders {
        let dir = args.output.join(name.replace([':', '/'], "-"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for rung in &rungs {
            let row = bench_one(args, name, rung, fps, gop, &dir, limit, vmaf_available)?;
            eprintln!(
                "{:<16} {:<6} {:>7.1} fps {:>8.0} kbit/s  PSNR-Y {:>6.2} dB  SSIM-Y {:.4}",
                row.encoder,
                row.rung,
                row.fps,
                row.bitrate_kbps,
                row.quality.psnr_y,
                row.quality.ssim_y
            );
            rows.push(row);
        }
    }

    let curve = |enc: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.encoder == enc)
            .map(|r| (r.bitrate_kbps, r.quality.psnr_y))
            .collect()
    };
    let anchor = encoders[0].clone();
    let bd_rate = encoders
        .iter()
        .map(|e| BdRate {
            encoder: e.clone(),
            psnr_y_percent: metrics::bd_rate(&curve(&anchor), &curve(e)),
        })
        .collect();
    let report = Report {
        input: args.input.display().to_string(),
        duration_limit_secs: args.duration,
        anchor,
        rows,
        bd_rate,
        vmaf: if vmaf_available {
            "ffmpeg libvmaf (reference scaled by ffmpeg, bicubic)"
        } else {
            "unavailable: this ffmpeg has no libvmaf"
        },
    };
    let json = args.output.join("bench.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let md = markdown(&report);
    let md_path = args.output.join("bench.md");
    std::fs::write(&md_path, &md).with_context(|| format!("cannot write {}", md_path.display()))?;
    let svg = args.output.join("bench.svg");
    plot(&report, &encoders, &svg).with_context(|| format!("cannot draw {}", svg.display()))?;
    print!("{md}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn bench_one(
    args: &BenchArgs,
    name: &str,
    rung: &Rung,
    fps: Option<strata_engine::probe::Ratio>,
    gop: u32,
    dir: &Path,
    limit: Option<Duration>,
    vmaf_available: bool,
) -> Result<Row> {
    let config = bench::encoder_by_name(name, rung.bitrate_kbps, gop)?;
    let target = Target {
        width: rung.width,
        height: rung.height,
        fps,
    };
    let file = dir.join(format!("{}.mp4", rung.name));
    let encode = bench::encode(&args.input, &target, &config, &file, limit)
        .with_context(|| format!("{name} at {}", rung.name))?;
    let quality = bench::quality(&args.input, &target, &file, limit)
        .with_context(|| format!("measuring {name} at {}", rung.name))?;
    let vmaf = if vmaf_available {
        vmaf(&args.input, &file, &target, limit)
    } else {
        None
    };
    Ok(Row {
        encoder: name.into(),
        element: config.element.clone(),
        rung: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        target_kbps: rung.bitrate_kbps,
        bitrate_kbps: encode.bitrate_kbps(),
        fps: encode.fps(),
        cpu_secs: encode.cpu_secs,
        encode,
        quality,
        vmaf,
        file,
    })
}

fn has_libvmaf() -> bool {
    std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-filters"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libvmaf"))
}

/// VMAF through ffmpeg's libvmaf; `None` if it fails.
fn vmaf(reference: &Path, distorted: &Path, t: &Target, limit: Option<Duration>) -> Option<f64> {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats"]);
    if let Some(l) = limit {
        cmd.args(["-t", &format!("{:.3}", l.as_secs_f64())]);
    }
    let graph = format!(
        "[1:v]scale={}:{}:flags=bicubic,setpts=PTS-STARTPTS[r];[0:v]setpts=PTS-STARTPTS[d];[d][r]libvmaf=shortest=1",
        t.width, t.height
    );
    let out = cmd
        .arg("-i")
        .arg(distorted)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.split("VMAF score:").nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "Input: `{}`{}\n\n| encoder | rung | size | fps | CPU s | kbit/s (target) | PSNR-Y dB | SSIM-Y | VMAF |\n|---|---|---|---|---|---|---|---|---|\n",
        r.input,
        r.duration_limit_secs
            .map(|d| format!(", first {d} s"))
            .unwrap_or_default()
    );
    for row in &r.rows {
        s += &format!(
            "| {} | {} | {}x{} | {:.1} | {:.1} | {:.0} ({}) | {:.2} | {:.4} | {} |\n",
            row.encoder,
            row.rung,
            row.width,
            row.height,
            row.fps,
            row.cpu_secs,
            row.bitrate_kbps,
            row.target_kbps,
            row.quality.psnr_y,
            row.quality.ssim_y,
            row.vmaf.map_or("n/a".to_string(), |v| format!("{v:.2}"))
        );
    }
    s += &format!(
        "\nBD-rate against {} (PSNR-Y over the ladder's rungs; negative = fewer bits for the same quality):\n\n| encoder | BD-rate |\n|---|---|\n",
        r.anchor
    );
    for b in &r.bd_rate {
        s += &format!(
            "| {} | {} |\n",
            b.encoder,
            b.psnr_y_percent
                .map_or("n/a (curves do not overlap)".to_string(), |p| format!(
                    "{p:+.1} %"
                ))
        );
    }
    s += &format!("\nVMAF: {}\n", r.vmaf);
    s
}

fn plot(r: &Report, encoders: &[String], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let max_rate = r.rows.iter().map(|x| x.bitrate_kbps).fold(1.0, f64::max) * 1.1;
    let (lo, hi) = r.rows.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| {
        (lo.min(x.quality.psnr_y), hi.max(x.quality.psnr_y))
    });
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("PSNR-Y against bit rate", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_rate, (lo - 1.0).floor()..(hi + 1.0).ceil())?;
    chart
        .configure_mesh()
        .x_desc("kbit/s")
        .y_desc("PSNR-Y (dB)")
        .draw()?;
    for (i, enc) in encoders.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter(|x| &x.encoder == enc)
            .map(|x| (x.bitrate_kbps, x.quality.psnr_y))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(enc.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
