//! Queue commands (`submit`, `status`, `jobs`, `cancel`, `retry`) and the
//! `strata worker` runtime.
//!
//! ```text
//! worker loop ─ permit ─► claim ─► spawn_blocking(transcode) ──► succeed | fail | release
//!                                    ▲ cancel flag
//!     heartbeat every min(lease/3, 2 s) ┘ (lease lost or job cancelled ─► stop the pipeline)
//! SIGTERM/SIGINT: stop claiming, let running jobs finish within the grace
//! period, then stop and release them; a second signal does that at once.
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strata_worker::queue::{Job, JobRequest, JobState, Queue};
use tokio::sync::Semaphore;

use crate::cli::{JobIdArgs, JobsArgs, QueueArgs, StateArg, SubmitArgs, WorkerArgs};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::transcode::{self, TranscodeConfig};

/// The queue URL: `--queue`, else `STRATA_QUEUE` (clap reads both), else a
/// SQLite file in the user's data directory.
pub fn queue_url(args: &QueueArgs) -> Result<String> {
    if let Some(url) = &args.queue {
        return Ok(url.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set; pass --queue")?;
    let dir = base.join("strata");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("queue.db").display()))
}

async fn open(args: &QueueArgs) -> Result<Queue> {
    let url = queue_url(args)?;
    Ok(Queue::connect(&url).await?)
}

/// Local paths become absolute: a worker may run in another directory.
fn absolute(arg: &str) -> String {
    match strata_packager::Location::parse(arg) {
        Ok(strata_packager::Location::Local(p)) => {
            std::path::absolute(&p).map_or_else(|_| arg.to_string(), |a| a.display().to_string())
        }
        _ => arg.to_string(),
    }
}

fn request(args: &SubmitArgs, input: &str, output: &str) -> Result<JobRequest> {
    let mut r = args.encode.request(&absolute(input), &absolute(output))?;
    r.slides = r.slides.as_deref().map(absolute);
    r.priority = args.priority;
    r.max_attempts = args.max_attempts;
    r.idempotency_key = args.idempotency_key.clone();
    Ok(r)
}

pub async fn submit(args: &SubmitArgs) -> Result<()> {
    let q = open(&args.queue).await?;
    let mut pairs = Vec::new();
    if let Some(batch) = &args.batch {
        let text = std::fs::read_to_string(batch)
            .with_context(|| format!("cannot read {}", batch.display()))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(i), Some(o), None) => pairs.push((i.to_string(), o.to_string())),
                _ => bail!(crate::UsageError(format!(
                    "{}:{}: expected \"INPUT OUTPUT\", got {line:?}",
                    batch.display(),
                    n + 1
                ))),
            }
        }
    } else {
        pairs.push((
            args.input.clone().unwrap_or_default(),
            args.output.clone().unwrap_or_default(),
        ));
    }
    let mut last = 0;
    for (input, output) in &pairs {
        let req = request(args, input, output)?;
        let (id, created) = q
            .submit(&req)
            .await
            .map_err(|e| crate::UsageError(format!("{input}: {e}")))?;
        if !created {
            eprintln!(
                "job {id} already exists for idempotency key {:?}",
                req.idempotency_key.unwrap_or_default()
            );
        }
        last = id;
        if pairs.len() > 1 {
            println!("{id} {input} {output}");
        }
    }
    if args.wait {
        let job = follow(&q, last).await?;
        if job.state != JobState::Succeeded {
            println!("{last}");
            bail!(
                "job {last} ended {}: {}",
                job.state.as_str(),
                job.error.unwrap_or_default()
            );
        }
    }
    println!("{last}");
    Ok(())
}

async fn follow(q: &Queue, id: i64) -> Result<Job> {
    let mut last_progress = -1.0;
    loop {
        let job = q.get(id).await?;
        if (job.progress - last_progress).abs() >= 0.01 {
            last_progress = job.progress;
            eprintln!(
                "job {id}: {} {:.0}% {:.0} fps",
                job.state.as_str(),
                job.progress * 100.0,
                job.fps
            );
        }
        if matches!(
            job.state,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        ) {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn status(args: &JobIdArgs) -> Result<()> {
    let q = open(&args.queue).await?;
    let job = q.get(args.id).await?;
    let events = q.events(args.id).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"job": job, "events": events}))?
        );
        return Ok(());
    }
    println!("job {}: {}", job.id, job.state.as_str());
    println!("  {} -> {}", job.request.input, job.request.output);
    println!(
        "  attempts {}/{}, progress {:.0}%, {:.1} fps",
        job.attempts,
        job.request.max_attempts,
        job.progress * 100.0,
        job.fps
    );
    if let Some(w) = &job.worker {
        println!("  worker {w}");
    }
    if let Some(e) = &job.error {
        println!("  error: {e}");
    }
    for e in events {
        println!("  {} {} {}", e.at, e.kind, e.detail.unwrap_or_default());
    }
    Ok(())
}

pub async fn list(args: &JobsArgs) -> Result<()> {
    let q = open(&args.queue).await?;
    let state = args.state.map(|s| match s {
        StateArg::Queued => JobState::Queued,
        StateArg::Running => JobState::Running,
        StateArg::Succeeded => JobState::Succeeded,
        StateArg::Failed => JobState::Failed,
        StateArg::Cancelled => JobState::Cancelled,
    });
    let jobs = q.list(state).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(());
    }
    for j in jobs {
        println!(
            "{:>6} {:<9} {:>3}% {}/{} {} -> {}",
            j.id,
            j.state.as_str(),
            (j.progress * 100.0).round(),
            j.attempts,
            j.request.max_attempts,
            j.request.input,
            j.request.output
        );
    }
    Ok(())
}

pub async fn cancel(args: &JobIdArgs) -> Result<()> {
    open(&args.queue).await?.cancel(args.id).await?;
    Ok(())
}

pub async fn retry(args: &JobIdArgs) -> Result<()> {
    open(&args.queue).await?.retry(args.id).await?;
    Ok(())
}

/// Rungs a job is assumed to encode at once when sharing out GPU sessions
/// (the default ladder's four).
const DEFAULT_RUNGS_PER_JOB: u32 = 4;

/// How often a running job renews its lease (and learns it was cancelled):
/// a third of the lease, and at least every 2 s so a cancel stops the
/// pipeline within seconds.
fn heartbeat_every(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(2))
}

/// Why a running job's pipeline was told to stop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    None,
    /// The queue no longer gives it to us (cancelled, or lease lost).
    LostJob,
    /// This worker is shutting down.
    Shutdown,
}

pub async fn worker(args: &WorkerArgs) -> Result<()> {
    let q = open(&args.queue).await?;
    let id = args.worker_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "host".into());
        format!("{}-{}", host.trim(), std::process::id())
    });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let concurrency = args.concurrency.unwrap_or((cores / 2).max(1)).max(1);
    let lease = Duration::from_secs(args.lease_secs.max(3));
    // GPU encoder sessions are a resource apart from the cores: jobs on a GPU
    // slot may encode there, jobs on a CPU slot may not (house style 10).
    let caps = tokio::task::spawn_blocking(|| transcode::capabilities().clone()).await?;
    let gpu_slots = args
        .gpu_jobs
        .unwrap_or_else(|| caps.gpu_job_slots(DEFAULT_RUNGS_PER_JOB));
    let cpu_permits = Arc::new(Semaphore::new(concurrency));
    let gpu_permits = Arc::new(Semaphore::new(gpu_slots));
    // Flips to true when running jobs must stop (grace over or a second
    // signal); every running job watches it.
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let metrics = Arc::new(Metrics::default());
    let mut wakeup = q.wakeup().await?;
    if args.metrics_port != 0 {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.metrics_port))
            .await
            .with_context(|| format!("cannot serve metrics on 127.0.0.1:{}", args.metrics_port))?;
        tokio::spawn(crate::metrics::serve(listener, q.clone(), metrics.clone()));
    }
    tracing::info!(
        worker = %id,
        concurrency,
        gpu_slots,
        gpu_encoder = caps.has_gpu_encoder(),
        queue = %queue_url(&args.queue)?,
        "worker started"
    );

    let mut running = tokio::task::JoinSet::new();
    loop {
        // A free GPU slot first: the GPU is the faster way through a job.
        let (permit, on_gpu) = tokio::select! {
            biased;
            p = gpu_permits.clone().acquire_owned() => (p?, true),
            p = cpu_permits.clone().acquire_owned() => (p?, false),
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let asked = std::time::Instant::now();
        let claimed = q.claim(&id, lease).await?;
        let claim_ms = asked.elapsed().as_secs_f64() * 1000.0;
        let Some(job) = claimed else {
            drop(permit);
            // Idle: PostgreSQL wakes us on NOTIFY; the poll interval still
            // catches retries whose backoff has passed.
            tokio::select! {
                _ = wakeup.wait(Duration::from_millis(args.poll_ms)) => continue,
                _ = sigterm.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        };
        metrics.claimed(claim_ms / 1000.0);
        tracing::info!(
            worker = %id,
            job = job.id,
            attempt = job.attempts,
            slot = if on_gpu { "gpu" } else { "cpu" },
            claim_ms,
            input = %job.request.input,
            output = %job.request.output,
            "job claimed"
        );
        let ctx = JobContext {
            queue: q.clone(),
            worker: id.clone(),
            lease,
            s3: args.s3.clone(),
            gpu_encode: on_gpu,
            shutdown: shutdown.subscribe(),
            metrics: metrics.clone(),
        };
        running.spawn(async move {
            let _permit = permit;
            ctx.run(job).await
        });
        // Reap finished jobs so errors are reported as they happen.
        while let Some(done) = running.try_join_next() {
            report(done);
        }
    }

    // Draining: no new claims. Let running jobs finish within the grace period.
    tracing::info!(worker = %id, running = running.len(), grace_secs = args.grace_secs, "draining");
    let grace = tokio::time::sleep(Duration::from_secs(args.grace_secs));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            done = running.join_next() => match done {
                Some(done) => report(done),
                None => break,
            },
            _ = &mut grace, if !*shutdown.borrow() => {
                tracing::warn!(worker = %id, "grace period over: releasing running jobs");
                shutdown.send_replace(true);
            }
            _ = sigterm.recv() => {
                tracing::warn!(worker = %id, "second signal: releasing running jobs now");
                shutdown.send_replace(true);
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::warn!(worker = %id, "second signal: releasing running jobs now");
                shutdown.send_replace(true);
            }
        }
    }
    tracing::info!(worker = %id, "worker stopped");
    Ok(())
}

fn report(done: std::result::Result<Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "job bookkeeping failed"),
        Err(e) => tracing::error!(error = %e, "job task failed"),
    }
}

/// What a running job needs from its worker.
struct JobContext {
    queue: Queue,
    worker: String,
    lease: Duration,
    s3: crate::cli::S3Args,
    /// The job holds a GPU slot and may encode on the GPU.
    gpu_encode: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
    metrics: Arc<Metrics>,
}

impl JobContext {
    async fn run(mut self, job: Job) -> Result<()> {
        let (q, worker, lease, metrics) = (&self.queue, &self.worker, self.lease, &self.metrics);
        let started = std::time::Instant::now();
        let r = &job.request;
        let config = match TranscodeConfig::new(r, &self.s3) {
            Ok(c) => TranscodeConfig {
                gpu_encode: self.gpu_encode,
                ..c
            },
            Err(e) => {
                tracing::warn!(worker = %worker, job = job.id, error = format!("{e:#}"), "job rejected");
                q.fail(job.id, worker, &format!("{e:#}")).await?;
                return Ok(());
            }
        };
        let events = Arc::new(Events::quiet());
        let cancel = Arc::new(AtomicBool::new(false));
        let (ev, cx) = (events.clone(), cancel.clone());
        // GStreamer and the blocking store calls stay off the async threads.
        let mut handle =
            tokio::task::spawn_blocking(move || transcode::run(&config, ev, &cx).map(|_| ()));
        let mut stop = Stop::None;
        let mut ticks = tokio::time::interval(heartbeat_every(lease));
        ticks.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut handle => break r,
                changed = self.shutdown.changed(), if stop == Stop::None => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        stop = Stop::Shutdown;
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
                _ = ticks.tick() => {
                    let (progress, fps) = events.latest();
                    if stop == Stop::None && !q.heartbeat(job.id, worker, lease, progress, fps).await? {
                        stop = Stop::LostJob;
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        match (result, stop) {
            (Ok(Ok(())), Stop::None) => {
                if q.succeed(job.id, worker).await? {
                    metrics.jobs_succeeded.fetch_add(1, Ordering::Relaxed);
                    metrics.job_finished(seconds, events.latest().1);
                    tracing::info!(worker = %worker, job = job.id, seconds, fps = events.latest().1, "job succeeded");
                } else {
                    metrics.lease_losses.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %worker, job = job.id, "job finished after its lease was lost; not recorded");
                }
            }
            (_, Stop::Shutdown) => {
                q.release(job.id, worker).await?;
                tracing::warn!(worker = %worker, job = job.id, seconds, "job stopped and released to the queue");
            }
            (_, Stop::LostJob) => {
                metrics.lease_losses.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(worker = %worker, job = job.id, "job cancelled or lease lost; pipeline stopped, nothing published");
            }
            (Ok(Err(e)), Stop::None) => {
                let state = q.fail(job.id, worker, &format!("{e:#}")).await?;
                metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
                metrics.job_finished(seconds, 0.0);
                tracing::warn!(
                    worker = %worker,
                    job = job.id,
                    state = state.as_str(),
                    error = format!("{e:#}"),
                    "job failed"
                );
            }
            (Err(e), Stop::None) => {
                q.fail(job.id, worker, &format!("worker task failed: {e}"))
                    .await?;
                metrics.jobs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(worker = %worker, job = job.id, error = %e, "job task panicked");
            }
        }
        Ok(())
    }
}
