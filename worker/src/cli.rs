//! Command-line surface: clap types only. `main` turns these into validated
//! configs before anything runs (house style rule 11).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Transcode uploads into verified adaptive HLS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn one media file into an HLS ladder under OUT.
    Transcode(TranscodeArgs),
    /// Print what a media file holds.
    Probe(ProbeArgs),
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

#[derive(Debug, clap::Args)]
pub struct TranscodeArgs {
    /// The media file to transcode: a path or s3://bucket/key.
    pub input: String,
    /// Output directory or s3://bucket/prefix; `master.m3u8` appears there
    /// only when the job succeeded.
    #[arg(short, long)]
    pub output: String,
    /// Ladder: `default` or a TOML file.
    #[arg(long, default_value = "default")]
    pub ladder: String,
    #[arg(long, value_enum, default_value_t = FormatArg::Cmaf)]
    pub format: FormatArg,
    /// Target segment length in seconds (1 to 60).
    #[arg(long, default_value_t = 6.0)]
    pub segment_duration: f64,
    /// Print JSON-lines events on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    pub input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
