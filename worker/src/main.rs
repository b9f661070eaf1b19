//! The `strata` binary: a thin clap front over the engine and packager.
//!
//! Exit codes (DESIGN.md): 0 done; 2 usage; 3 bad input; 4 output/storage
//! failure; 5 internal/pipeline failure; 130 interrupted.

mod bench;
mod cli;
mod events;
mod jobs;
mod metrics;
mod slides;
mod storage;
mod transcode;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Parser;
use strata_engine::{EngineError, ErrorClass};
use strata_packager::PackagerError;

use cli::{Cli, Command};

pub const EXIT_USAGE: u8 = 2;
pub const EXIT_BAD_INPUT: u8 = 3;
pub const EXIT_OUTPUT: u8 = 4;
pub const EXIT_INTERNAL: u8 = 5;
pub const EXIT_INTERRUPTED: u8 = 130;

/// A request that cannot be run as given (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An input that cannot be fetched or read (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return EXIT_USAGE;
        }
        if cause.downcast_ref::<InputError>().is_some() {
            return EXIT_BAD_INPUT;
        }
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return match (e, e.class()) {
                (EngineError::Cancelled, _) => EXIT_INTERRUPTED,
                (_, ErrorClass::Usage) => EXIT_USAGE,
                (_, ErrorClass::BadInput) => EXIT_BAD_INPUT,
                (_, ErrorClass::Output) => EXIT_OUTPUT,
                (_, ErrorClass::Internal) => EXIT_INTERNAL,
            };
        }
        if let Some(e) = cause.downcast_ref::<PackagerError>() {
            return match e {
                PackagerError::BadUri { .. } => EXIT_USAGE,
                PackagerError::Write { .. }
                | PackagerError::Read { .. }
                | PackagerError::BadKey { .. }
                | PackagerError::S3 { .. }
                | PackagerError::NoSuchBucket { .. }
                | PackagerError::NotFound { .. }
                | PackagerError::Upload { .. } => EXIT_OUTPUT,
                _ => EXIT_INTERNAL,
            };
        }
    }
    EXIT_INTERNAL
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let json = match &cli.command {
        Command::Transcode(a) => a.json,
        Command::Probe(a) => a.json,
        _ => false,
    };
    let events = Arc::new(events::Events::new(json));
    match run(cli, events.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code(&err);
            let message = format!("{err:#}");
            eprintln!("strata: error: {message}");
            events.error(i32::from(code), &message);
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr (stdout carries results and JSON events). Without
/// STRATA_LOG, info and above.
fn init_logs(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => logs.init(),
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

fn run(cli: Cli, events: Arc<events::Events>) -> Result<()> {
    match cli.command {
        Command::Transcode(args) => {
            let config = transcode::TranscodeConfig::from_args(&args)?;
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = cancel.clone();
            // First Ctrl-C stops the pipeline cleanly (nothing is published);
            // a second one exits at once.
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
            });
            transcode::run(&config, events, &cancel)?;
            Ok(())
        }
        Command::Submit(args) => block_on(jobs::submit(&args)),
        Command::Status(args) => block_on(jobs::status(&args)),
        Command::Jobs(args) => block_on(jobs::list(&args)),
        Command::Cancel(args) => block_on(jobs::cancel(&args)),
        Command::Retry(args) => block_on(jobs::retry(&args)),
        Command::Worker(args) => {
            strata_engine::init()?;
            block_on(jobs::worker(&args))
        }
        Command::Bench(args) => bench::run(&args),
        Command::Slides(args) => {
            strata_engine::init()?;
            let times = args
                .slide_times
                .as_deref()
                .map(slides::load_times)
                .transpose()?;
            let deck = storage::fetch_input(&storage::parse_location(&args.deck)?, &args.s3)?;
            let out = storage::parse_location(&args.output)?;
            let store = storage::open_output(&out, &args.s3, Box::new(|_, _| {}))?;
            if !(args.convert_timeout.is_finite() && args.convert_timeout > 0.0) {
                anyhow::bail!(UsageError(format!(
                    "--convert-timeout {} must be a positive number of seconds",
                    args.convert_timeout
                )));
            }
            let settings = strata_engine::slides::SlideSettings {
                max_slides: args.max_slides,
                convert_timeout: std::time::Duration::from_secs_f64(args.convert_timeout),
                ..Default::default()
            };
            let cancel = AtomicBool::new(false);
            let published = slides::publish(
                &store,
                &deck.path,
                times.as_deref(),
                None,
                &settings,
                &cancel,
            )?;
            println!("{}", serde_json::to_string_pretty(&published)?);
            Ok(())
        }
        Command::Caps(args) => {
            strata_engine::init()?;
            let caps = strata_engine::Capabilities::detect_all_verified();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&caps)?);
            } else {
                print_caps(&caps);
            }
            Ok(())
        }
        Command::Probe(args) => {
            strata_engine::init()?;
            let probe = strata_engine::probe(&args.input)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&probe)?);
            } else {
                print_probe(&probe);
            }
            Ok(())
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

fn print_caps(caps: &strata_engine::Capabilities) {
    println!(
        "{:<18} {:<14} {:<6} {:<9} {:<10} sessions",
        "element", "kind", "codec", "where", "verified"
    );
    for e in &caps.elements {
        println!(
            "{:<18} {:<14} {:<6} {:<9} {:<10} {}",
            e.element,
            e.kind.as_str(),
            e.codec,
            e.vendor.map_or("cpu", |v| v.as_str()),
            match e.verified {
                Some(true) => "yes",
                Some(false) => "FAILED",
                None => "not tried",
            },
            e.sessions.map_or("-".to_string(), |n| n.to_string())
        );
    }
    let gpu = caps
        .elements
        .iter()
        .any(|e| e.hardware() && e.verified != Some(false));
    if !gpu {
        println!("no GPU: every job runs on the CPU");
    }
}

fn print_probe(p: &strata_engine::Probe) {
    println!("file:      {}", p.path.display());
    println!("container: {}", p.container.as_deref().unwrap_or("(none)"));
    println!("duration:  {:.3} s", p.duration.as_secs_f64());
    match &p.video {
        Some(v) => {
            let fps = v.frame_rate.map_or("variable".to_string(), |r| {
                format!("{:.3} fps ({}/{})", r.as_f64(), r.num, r.den)
            });
            println!(
                "video:     {} {}x{} (pixel aspect {}/{}, display {}:{}), {}{}",
                v.codec,
                v.width,
                v.height,
                v.pixel_aspect.num,
                v.pixel_aspect.den,
                v.display_aspect.num,
                v.display_aspect.den,
                fps,
                if v.interlaced { ", interlaced" } else { "" }
            );
        }
        None => println!("video:     (none)"),
    }
    match &p.audio {
        Some(a) => println!(
            "audio:     {} {} Hz, {} channel(s)",
            a.codec, a.sample_rate, a.channels
        ),
        None => println!("audio:     (none)"),
    }
}
