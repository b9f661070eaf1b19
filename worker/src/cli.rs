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

#[derive(Debug, clap::Args)]
pub struct TranscodeArgs {
    /// The media file to transcode.
    pub input: PathBuf,
    /// Output directory; `master.m3u8` appears there only when the job succeeded.
    #[arg(short, long)]
    pub output: PathBuf,
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
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    pub input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
