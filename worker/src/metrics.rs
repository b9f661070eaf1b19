//! `/metrics` (Prometheus text format) and `/healthz` for `strata worker`,
//! served by a deliberately small HTTP responder on the worker's runtime.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use strata_worker::queue::{JobState, Queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds of the job-duration histogram, seconds.
const BUCKETS: [f64; 8] = [10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

#[derive(Default)]
pub struct Metrics {
    pub lease_losses: AtomicU64,
    pub jobs_succeeded: AtomicU64,
    pub jobs_failed: AtomicU64,
    /// (bucket counts, +Inf count, sum of seconds)
    durations: Mutex<([u64; BUCKETS.len()], u64, f64)>,
    /// Frames per second of the last finished encode, as f64 bits.
    last_fps: AtomicU64,
    /// (claims that returned a job, their total latency in seconds)
    claims: Mutex<(u64, f64)>,
}

impl Metrics {
    pub fn job_finished(&self, seconds: f64, fps: f64) {
        let mut d = self.durations.lock().unwrap();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                d.0[i] += 1;
            }
        }
        d.1 += 1;
        d.2 += seconds;
        self.last_fps.store(fps.to_bits(), Ordering::Relaxed);
    }

    /// A claim that returned a job took `seconds` (the queue's share of a job).
    pub fn claimed(&self, seconds: f64) {
        let mut c = self.claims.lock().unwrap();
        c.0 += 1;
        c.1 += seconds;
    }

    async fn render(&self, queue: &Queue) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP strata_jobs Jobs in the queue by state.\n# TYPE strata_jobs gauge"
        );
        let counts = queue.counts().await.unwrap_or_default();
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "strata_jobs{{state=\"{}\"}} {n}", state.as_str());
        }
        let queued = counts
            .iter()
            .find(|(s, _)| *s == JobState::Queued)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "# HELP strata_queue_depth Jobs waiting to run.\n# TYPE strata_queue_depth gauge\nstrata_queue_depth {queued}"
        );
        let _ = writeln!(
            out,
            "# HELP strata_worker_jobs_total Jobs this worker finished.\n# TYPE strata_worker_jobs_total counter\nstrata_worker_jobs_total{{result=\"succeeded\"}} {}\nstrata_worker_jobs_total{{result=\"failed\"}} {}",
            self.jobs_succeeded.load(Ordering::Relaxed),
            self.jobs_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strata_lease_losses_total Jobs this worker lost (lease expired or cancelled).\n# TYPE strata_lease_losses_total counter\nstrata_lease_losses_total {}",
            self.lease_losses.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strata_encode_fps Frames per second of the last finished encode.\n# TYPE strata_encode_fps gauge\nstrata_encode_fps {}",
            f64::from_bits(self.last_fps.load(Ordering::Relaxed))
        );
        let d = *self.durations.lock().unwrap();
        let _ = writeln!(
            out,
            "# HELP strata_job_duration_seconds Wall time of finished jobs.\n# TYPE strata_job_duration_seconds histogram"
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "strata_job_duration_seconds_bucket{{le=\"{le}\"}} {}",
                d.0[i]
            );
        }
        let _ = writeln!(
            out,
            "strata_job_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            d.1
        );
        let _ = writeln!(
            out,
            "strata_job_duration_seconds_sum {}\nstrata_job_duration_seconds_count {}",
            d.2, d.1
        );
        let c = *self.claims.lock().unwrap();
        let _ = writeln!(
            out,
            "# HELP strata_claim_seconds Time to claim a job from the queue.\n# TYPE strata_claim_seconds summary\nstrata_claim_seconds_sum {}\nstrata_claim_seconds_count {}",
            c.1, c.0
        );
        out
    }
}

/// Answer GET /metrics and GET /healthz until the runtime stops.
pub async fn serve(listener: TcpListener, queue: Queue, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let (queue, metrics) = (queue.clone(), metrics.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "text/plain; version=0.0.4",
                    metrics.render(&queue).await,
                ),
                "/healthz" => match queue.counts().await {
                    Ok(_) => ("200 OK", "text/plain", "ok\n".to_string()),
                    Err(e) => (
                        "503 Service Unavailable",
                        "text/plain",
                        format!("queue unavailable: {e}\n"),
                    ),
                },
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        });
    }
}
