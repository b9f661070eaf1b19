//! Command-line surface: clap types only. `main` turns these into validated
//! configs before anything runs (house style rule 11).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use strata_worker::queue::JobRequest;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Transcode uploads into verified adaptive HLS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on stderr as text or as JSON objects (one per line).
    /// Filter with STRATA_LOG (e.g. `debug`, `strata=info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn one media file into an HLS ladder under OUT.
    Transcode(TranscodeArgs),
    /// Print what a media file holds.
    Probe(ProbeArgs),
    /// Render a deck alone: slide images, thumbnails, slides.json (and
    /// slides.vtt with --slide-times) under OUT/slides/.
    Slides(SlidesArgs),
    /// Compare encoders on an input: speed, bit rate, PSNR/SSIM (and VMAF
    /// where ffmpeg has libvmaf), BD-rate; writes bench.json, bench.md and
    /// bench.svg into OUTDIR.
    Bench(BenchArgs),
    /// List the decoders, scalers and encoders this machine has, each
    /// smoke-tested (hardware and software).
    Caps(CapsArgs),
    /// Queue a transcode (or a batch of them); prints the job id last.
    Submit(SubmitArgs),
    /// Show one queued job: state, attempts, progress, error, events.
    Status(JobIdArgs),
    /// List queued jobs.
    Jobs(JobsArgs),
    /// Cancel a queued or running job.
    Cancel(JobIdArgs),
    /// Put a failed or cancelled job back in the queue.
    Retry(JobIdArgs),
    /// Run jobs from the queue until stopped (SIGTERM drains, a second signal aborts).
    Worker(WorkerArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// sqlite://PATH or postgres://...; default: a SQLite file in the user's data directory.
    #[arg(long, env = "STRATA_QUEUE")]
    pub queue: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The media file: a path or s3://bucket/key.
    #[arg(required_unless_present = "batch")]
    pub input: Option<String>,
    /// Output directory or s3://bucket/prefix.
    #[arg(short, long, required_unless_present = "batch")]
    pub output: Option<String>,
    /// A file of "INPUT OUTPUT" lines, one job each (archive re-encodes).
    #[arg(long, conflicts_with_all = ["input", "output"])]
    pub batch: Option<PathBuf>,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Higher runs first.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Submitting the same key again returns the existing job.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Follow the job until it ends; exit non-zero unless it succeeded.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, clap::Args)]
pub struct JobIdArgs {
    pub id: i64,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Jobs at once (default: half the CPU cores, at least 1: one CPU
    /// transcode already keeps two cores busy).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Extra jobs that encode on the GPU (default: from the GPU encoder's
    /// session limit, 0 without one). CPU-slot jobs never take a GPU
    /// encoder session, though they may decode on the GPU.
    #[arg(long)]
    pub gpu_jobs: Option<usize>,
    /// Lease length in seconds; renewed every third of it.
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// On SIGTERM, how long running jobs may take before they are released.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Milliseconds between polls of an empty queue.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Name in the queue (default host-pid).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Serve Prometheus /metrics and /healthz on 127.0.0.1:PORT (0: off).
    #[arg(long, default_value_t = 0)]
    pub metrics_port: u16,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Fragmented MP4 (CMAF) segments.
    Cmaf,
    /// MPEG-TS segments.
    Ts,
}

/// Where S3 locations live and how objects are written there. Credentials
/// come from the standard AWS chain (environment, profile).
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// An S3-compatible endpoint (path-style addressing), e.g. http://127.0.0.1:8014.
    #[arg(long, env = "STRATA_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region (else AWS_REGION, else us-east-1).
    #[arg(long, env = "STRATA_S3_REGION")]
    pub s3_region: Option<String>,
    /// Server-side encryption for written objects: AES256 or aws:kms.
    #[arg(long, value_parser = ["AES256", "aws:kms"])]
    pub sse: Option<String>,
    /// Storage class for written objects, e.g. STANDARD_IA.
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Objects above this many MiB are uploaded in parts (5 or more).
    #[arg(long, default_value_t = 8)]
    pub s3_part_mib: usize,
}

/// What to make: the same options for `transcode` and `submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct EncodeArgs {
    /// Ladder: `default` or a TOML file.
    #[arg(long, default_value = "default")]
    pub ladder: String,
    #[arg(long, value_enum, default_value_t = FormatArg::Cmaf)]
    pub format: FormatArg,
    /// Target segment length in seconds (1 to 60).
    #[arg(long, default_value_t = 6.0)]
    pub segment_duration: f64,
    /// A deck (.pptx, .ppt, .odp, .pdf; path or s3:// URI) to render into
    /// OUT/slides/ beside the ladder.
    #[arg(long)]
    pub slides: Option<String>,
    /// JSON list of {"slide": N, "at": SECONDS}: when each slide was shown.
    #[arg(long, requires = "slides")]
    pub slide_times: Option<PathBuf>,
    /// Hardware to use: auto (the best present, else CPU), cpu, nvidia,
    /// vaapi or qsv (an error when not present; see `strata caps`).
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "nvidia", "vaapi", "qsv"])]
    pub hw: String,
}

impl EncodeArgs {
    pub fn format_name(&self) -> &'static str {
        match self.format {
            FormatArg::Cmaf => "cmaf",
            FormatArg::Ts => "ts",
        }
    }

    /// A job request for INPUT → OUTPUT with these options. The slide
    /// times are read now and travel inside the request: a worker may not
    /// see this file.
    pub fn request(&self, input: &str, output: &str) -> anyhow::Result<JobRequest> {
        let mut r = JobRequest::new(input, output);
        r.ladder = self.ladder.clone();
        r.format = self.format_name().into();
        r.segment_duration = self.segment_duration;
        r.hw = self.hw.clone();
        r.slides = self.slides.clone();
        r.slide_times = self
            .slide_times
            .as_deref()
            .map(crate::slides::load_times)
            .transpose()?;
        Ok(r)
    }
}

#[derive(Debug, clap::Args)]
pub struct TranscodeArgs {
    /// The media file to transcode: a path or s3://bucket/key.
    pub input: String,
    /// Output directory or s3://bucket/prefix; `master.m3u8` appears there
    /// only when the job succeeded.
    #[arg(short, long)]
    pub output: String,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print JSON-lines events on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, clap::Args)]
pub struct SlidesArgs {
    /// The deck: .pptx, .ppt, .odp or .pdf (a path or s3:// URI).
    pub deck: String,
    /// Output directory or s3://bucket/prefix.
    #[arg(short, long)]
    pub output: String,
    /// JSON list of {"slide": N, "at": SECONDS}.
    #[arg(long)]
    pub slide_times: Option<PathBuf>,
    /// Decks with more slides than this are refused.
    #[arg(long, default_value_t = strata_engine::slides::DEFAULT_MAX_SLIDES)]
    pub max_slides: usize,
    /// Seconds LibreOffice may take to convert an office deck.
    #[arg(long, default_value_t = strata_engine::slides::DEFAULT_CONVERT_TIMEOUT.as_secs_f64())]
    pub convert_timeout: f64,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The media file to encode.
    pub input: PathBuf,
    /// Directory for the encoded files and the reports.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Comma-separated: x264[:PRESET], x265[:PRESET], openh264, or an
    /// encoder element (nvh264enc, vah264enc, qsvh264enc, …). The first is
    /// the anchor for BD-rate.
    #[arg(long, default_value = "x264:veryfast,x264:medium,openh264")]
    pub encoders: String,
    /// Ladder: `default` or a TOML file; every rung that fits the input is
    /// encoded.
    #[arg(long, default_value = "default")]
    pub ladder: String,
    /// Only the first SECS seconds of the input.
    #[arg(long)]
    pub duration: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct CapsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    pub input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
