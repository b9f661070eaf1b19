//! `queue`: durable job queue for `strata worker`, on SQLite (one box, the
//! embedded default) or PostgreSQL (a fleet), through one implementation.
//!
//! ```text
//! submit ─► queued ─claim─► running ─succeed─► succeeded
//!              ▲              │ fail (attempts < max) ─► queued, run_after = now + backoff
//!              │              │ fail (attempts = max) ─► failed (dead letter)
//!              └─ lease expired, reclaimed by any worker
//!          cancel: queued|running ─► cancelled      retry: failed|cancelled ─► queued
//! ```
//!
//! A claim takes the highest priority, then oldest, runnable job and holds it
//! under a lease that the worker renews by heartbeat. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so workers never wait on each other; SQLite
//! serialises writers itself. Every change is recorded in an event log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(10);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    #[error("queue {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("queue URL {0:?} must start with sqlite:// or postgres://")]
    BadUrl(String),
    #[error("invalid job: {0}")]
    Invalid(String),
    #[error("job {0} does not exist")]
    NoSuchJob(i64),
    #[error("job {id} is {state}, cannot {action}")]
    WrongState {
        id: i64,
        state: String,
        action: &'static str,
    },
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// What a submitter asks for; validated before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    pub input: String,
    pub output: String,
    #[serde(default = "default_ladder")]
    pub ladder: String,
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default = "default_segment")]
    pub segment_duration: f64,
    /// `--hw`: auto, cpu, nvidia, vaapi or qsv.
    #[serde(default = "default_hw")]
    pub hw: String,
    /// A deck (path or s3:// URI) to render beside the ladder.
    #[serde(default)]
    pub slides: Option<String>,
    /// The capture's record of slide changes, when known.
    #[serde(default)]
    pub slide_times: Option<Vec<strata_engine::slides::SlideTime>>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The same key submitted twice is one job.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn default_ladder() -> String {
    "default".into()
}
fn default_format() -> String {
    "cmaf".into()
}
fn default_hw() -> String {
    "auto".into()
}
fn default_segment() -> f64 {
    6.0
}
fn default_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

impl JobRequest {
    pub fn new(input: &str, output: &str) -> Self {
        JobRequest {
            input: input.into(),
            output: output.into(),
            ladder: default_ladder(),
            format: default_format(),
            segment_duration: default_segment(),
            hw: default_hw(),
            slides: None,
            slide_times: None,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            idempotency_key: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(QueueError::Invalid(m));
        for (what, loc) in [("input", &self.input), ("output", &self.output)] {
            if let Err(e) = strata_packager::Location::parse(loc) {
                return bad(format!("{what}: {e}"));
            }
        }
        if !["cmaf", "ts"].contains(&self.format.as_str()) {
            return bad(format!("format {:?} is not cmaf or ts", self.format));
        }
        if let Some(deck) = &self.slides
            && let Err(e) = strata_packager::Location::parse(deck)
        {
            return bad(format!("slides: {e}"));
        }
        if let Err(e) = self.hw.parse::<strata_engine::HwChoice>() {
            return bad(e);
        }
        if !(1.0..=60.0).contains(&self.segment_duration) {
            return bad(format!(
                "segment duration {} is outside 1..=60 s",
                self.segment_duration
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return bad(format!(
                "max attempts {} is outside 1..=100",
                self.max_attempts
            ));
        }
        if !(-1000..=1000).contains(&self.priority) {
            return bad(format!(
                "priority {} is outside -1000..=1000",
                self.priority
            ));
        }
        if self
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 200)
        {
            return bad("idempotency key must be 1 to 200 characters".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Queued,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub request: JobRequest,
    pub state: JobState,
    pub attempts: u32,
    pub progress: f64,
    pub fps: f64,
    pub error: Option<String>,
    pub worker: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub lease_until: Option<i64>,
    pub run_after: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    pub at: i64,
    pub kind: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pool: AnyPool,
    dialect: Dialect,
    url: String,
    retry_base: Duration,
}

const COLUMNS: &str = "id, request, state, attempts, progress, fps, error, worker, lease_until, run_after, created_at, updated_at";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The channel that tells idle PostgreSQL workers a job became runnable.
const NOTIFY_CHANNEL: &str = "strata_jobs";

/// Wakes an idle worker when a job is submitted or requeued (PostgreSQL
/// LISTEN/NOTIFY). SQLite has no such channel: its workers poll.
pub struct Wakeup {
    listener: Option<sqlx::postgres::PgListener>,
}

impl Wakeup {
    /// Wait for a notification, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) {
        match &mut self.listener {
            Some(l) => {
                let _ = tokio::time::timeout(limit, l.recv()).await;
            }
            None => tokio::time::sleep(limit).await,
        }
    }
}

/// Delay before attempt `attempts + 1`: base × 2^(attempts-1), capped.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(MAX_RETRY_DELAY)
}

impl Queue {
    /// Connect and run the migrations. `sqlite://PATH` creates the file.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (dialect, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let sep = if path.contains('?') { '&' } else { '?' };
            (Dialect::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(QueueError::BadUrl(url.into()));
        };
        let db = |source| QueueError::Database {
            url: url.into(),
            source,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 1 } else { 4 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // Several worker processes share one file: wait for
                        // the write lock instead of failing, and let readers
                        // run beside the writer.
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(db)?;
        let q = Queue {
            pool,
            dialect,
            url: url.into(),
            retry_base: DEFAULT_RETRY_BASE,
        };
        q.migrate().await?;
        Ok(q)
    }

    /// A listener for new work (PostgreSQL), or a plain timer (SQLite).
    pub async fn wakeup(&self) -> Result<Wakeup> {
        if self.dialect == Dialect::Sqlite {
            return Ok(Wakeup { listener: None });
        }
        let mut l = sqlx::postgres::PgListener::connect(&self.url)
            .await
            .map_err(|e| self.db(e))?;
        l.listen(NOTIFY_CHANNEL).await.map_err(|e| self.db(e))?;
        Ok(Wakeup { listener: Some(l) })
    }

    /// Tell idle workers there is work (PostgreSQL only).
    async fn notify(&self) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(self.sql("SELECT pg_notify($1, '')"))
                .bind(NOTIFY_CHANNEL)
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Base of the exponential retry delay (tests shorten it).
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    fn db(&self, source: sqlx::Error) -> QueueError {
        QueueError::Database {
            url: self.url.clone(),
            source,
        }
    }

    /// SQL is written with `$1` placeholders; SQLite's numbered form is `?1`.
    /// Every statement is built from constants in this module; values are
    /// always bound, never formatted in, so the text is safe.
    fn sql(&self, q: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(match self.dialect {
            Dialect::Postgres => q.to_string(),
            Dialect::Sqlite => q.replace('$', "?"),
        })
    }

    async fn migrate(&self) -> Result<()> {
        let id = match self.dialect {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS strata_jobs (
                    id {id},
                    idempotency_key TEXT UNIQUE,
                    request TEXT NOT NULL,
                    priority BIGINT NOT NULL,
                    state TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    max_attempts BIGINT NOT NULL,
                    run_after BIGINT NOT NULL,
                    lease_until BIGINT,
                    worker TEXT,
                    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
                    fps DOUBLE PRECISION NOT NULL DEFAULT 0,
                    error TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS strata_jobs_runnable ON strata_jobs (state, priority, id)"
                .into(),
            format!(
                "CREATE TABLE IF NOT EXISTS strata_job_events (
                    id {id},
                    job_id BIGINT NOT NULL,
                    at BIGINT NOT NULL,
                    kind TEXT NOT NULL,
                    detail TEXT)"
            ),
            "CREATE INDEX IF NOT EXISTS strata_job_events_job ON strata_job_events (job_id, id)"
                .into(),
        ];
        for s in statements {
            sqlx::query(AssertSqlSafe(s))
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    async fn event(&self, job: i64, kind: &str, detail: Option<&str>) -> Result<()> {
        sqlx::query(self.sql(
            "INSERT INTO strata_job_events (job_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
        ))
        .bind(job)
        .bind(now_ms())
        .bind(kind)
        .bind(detail.map(str::to_string))
        .execute(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Store a job. Returns its id and whether it is new: a request whose
    /// idempotency key is already known returns the existing job.
    pub async fn submit(&self, req: &JobRequest) -> Result<(i64, bool)> {
        req.validate()?;
        let now = now_ms();
        let text = serde_json::to_string(req).expect("a job request serialises");
        let inserted: Option<AnyRow> = sqlx::query(self.sql(
            "INSERT INTO strata_jobs (idempotency_key, request, priority, state, max_attempts, run_after, created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', $4, $5, $5, $5)
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        ))
        .bind(req.idempotency_key.clone())
        .bind(text)
        .bind(i64::from(req.priority))
        .bind(i64::from(req.max_attempts))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        if let Some(row) = inserted {
            let id: i64 = row.try_get(0).map_err(|e| self.db(e))?;
            self.event(id, "submitted", None).await?;
            self.notify().await?;
            return Ok((id, true));
        }
        let row = sqlx::query(self.sql("SELECT id FROM strata_jobs WHERE idempotency_key = $1"))
            .bind(req.idempotency_key.clone())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        Ok((row.try_get(0).map_err(|e| self.db(e))?, false))
    }

    /// Take the next runnable job under a lease of `lease`: queued jobs whose
    /// retry time has come, and running jobs whose lease expired (their
    /// worker died). Highest priority first, then oldest.
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        let now = now_ms();
        self.dead_letter_expired(now).await?;
        let lock = match self.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let q = format!(
            "UPDATE strata_jobs SET state = 'running', worker = $1, lease_until = $2, attempts = attempts + 1,
                 updated_at = $3, error = CASE WHEN state = 'running' THEN 'lease expired' ELSE error END
             WHERE id = (SELECT id FROM strata_jobs
                         WHERE (state = 'queued' AND run_after <= $3)
                            OR (state = 'running' AND lease_until < $3 AND attempts < max_attempts)
                         ORDER BY priority DESC, id ASC LIMIT 1 {lock})
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(self.sql(&q))
            .bind(worker)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        let Some(row) = row else { return Ok(None) };
        let job = self.job_from(&row)?;
        self.event(
            job.id,
            "claimed",
            Some(&format!("worker {worker}, attempt {}", job.attempts)),
        )
        .await?;
        Ok(Some(job))
    }

    /// Running jobs whose lease expired on their last attempt: dead-lettered.
    async fn dead_letter_expired(&self, now: i64) -> Result<()> {
        let rows = sqlx::query(self.sql(
            "UPDATE strata_jobs SET state = 'failed', error = 'lease expired on the last attempt', updated_at = $1
             WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts RETURNING id",
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        for row in rows {
            let id: i64 = row.try_get(0).map_err(|e| self.db(e))?;
            self.event(id, "failed", Some("lease expired on the last attempt"))
                .await?;
        }
        Ok(())
    }

    /// Renew the lease and record progress. `false`: the job is no longer
    /// this worker's (lease lost, or cancelled) and it must stop.
    pub async fn heartbeat(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: f64,
        fps: f64,
    ) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(self.sql(
            "UPDATE strata_jobs SET lease_until = $1, progress = $2, fps = $3, updated_at = $4
             WHERE id = $5 AND worker = $6 AND state = 'running'",
        ))
        .bind(now + lease.as_millis() as i64)
        .bind(progress)
        .bind(fps)
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Mark this worker's running job done. `false` if it was not ours.
    pub async fn succeed(&self, id: i64, worker: &str) -> Result<bool> {
        self.update_own(
            "UPDATE strata_jobs SET state = 'succeeded', progress = 1, lease_until = NULL, error = NULL, updated_at = $1
             WHERE id = $2 AND worker = $3 AND state = 'running'",
            id,
            worker,
            "succeeded",
        )
        .await
    }

    /// Run `sql` (binding $1 now, $2 the job, $3 the worker) on a job this
    /// worker holds; log `kind` when it was indeed ours.
    async fn update_own(&self, sql: &str, id: i64, worker: &str, kind: &str) -> Result<bool> {
        let done = sqlx::query(self.sql(sql))
            .bind(now_ms())
            .bind(id)
            .bind(worker)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        let ours = done.rows_affected() == 1;
        if ours {
            self.event(id, kind, Some(worker)).await?;
        }
        Ok(ours)
    }

    /// Record a failed attempt: back to the queue after a growing delay, or
    /// dead-lettered once the attempts are used up. Returns the new state.
    pub async fn fail(&self, id: i64, worker: &str, error: &str) -> Result<JobState> {
        let job = self.get(id).await?;
        if job.state != JobState::Running || job.worker.as_deref() != Some(worker) {
            return Err(QueueError::WrongState {
                id,
                state: job.state.as_str().into(),
                action: "fail",
            });
        }
        let now = now_ms();
        let (state, run_after) = if job.attempts >= job.request.max_attempts {
            (JobState::Failed, now)
        } else {
            (
                JobState::Queued,
                now + retry_delay(self.retry_base, job.attempts).as_millis() as i64,
            )
        };
        sqlx::query(self.sql(
            "UPDATE strata_jobs SET state = $1, run_after = $2, error = $3, lease_until = NULL, updated_at = $4
             WHERE id = $5 AND worker = $6 AND state = 'running'",
        ))
        .bind(state.as_str())
        .bind(run_after)
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        let kind = if state == JobState::Failed {
            "failed"
        } else {
            "retried"
        };
        self.event(id, kind, Some(error)).await?;
        Ok(state)
    }

    /// Give a running job back without counting the attempt (a draining
    /// worker that ran out of grace time).
    pub async fn release(&self, id: i64, worker: &str) -> Result<bool> {
        let ours = self
            .update_own(
                "UPDATE strata_jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, run_after = $1,
                     updated_at = $1
                 WHERE id = $2 AND worker = $3 AND state = 'running'",
                id,
                worker,
                "released",
            )
            .await?;
        if ours {
            self.notify().await?;
        }
        Ok(ours)
    }

    /// Cancel a queued or running job (a running one stops at its next heartbeat).
    pub async fn cancel(&self, id: i64) -> Result<()> {
        self.transition(id, &["queued", "running"], "cancelled", "cancel")
            .await
    }

    /// Put a failed or cancelled job back in the queue with fresh attempts.
    pub async fn retry(&self, id: i64) -> Result<()> {
        self.transition(id, &["failed", "cancelled"], "queued", "retry")
            .await
    }

    async fn transition(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        action: &'static str,
    ) -> Result<()> {
        let job = self.get(id).await?;
        if !from.contains(&job.state.as_str()) {
            return Err(QueueError::WrongState {
                id,
                state: job.state.as_str().into(),
                action,
            });
        }
        let now = now_ms();
        let reset = if to == "queued" {
            ", attempts = 0, error = NULL"
        } else {
            ""
        };
        let q = format!(
            "UPDATE strata_jobs SET state = $1, run_after = $2, lease_until = NULL, updated_at = $2{reset}
             WHERE id = $3 AND state = $4"
        );
        let done = sqlx::query(self.sql(&q))
            .bind(to)
            .bind(now)
            .bind(id)
            .bind(job.state.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        if done.rows_affected() != 1 {
            // It changed under us; report what it is now.
            let now_state = self.get(id).await?.state;
            return Err(QueueError::WrongState {
                id,
                state: now_state.as_str().into(),
                action,
            });
        }
        let kind = if to == "queued" { "retried" } else { to };
        self.event(id, kind, Some("by request")).await?;
        if to == "queued" {
            self.notify().await?;
        }
        Ok(())
    }

    pub async fn get(&self, id: i64) -> Result<Job> {
        let row =
            sqlx::query(self.sql(&format!("SELECT {COLUMNS} FROM strata_jobs WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db(e))?
                .ok_or(QueueError::NoSuchJob(id))?;
        self.job_from(&row)
    }

    pub async fn list(&self, state: Option<JobState>) -> Result<Vec<Job>> {
        let rows = match state {
            Some(s) => {
                sqlx::query(self.sql(&format!(
                    "SELECT {COLUMNS} FROM strata_jobs WHERE state = $1 ORDER BY id"
                )))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(self.sql(&format!("SELECT {COLUMNS} FROM strata_jobs ORDER BY id")))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.job_from(r)).collect()
    }

    /// Number of jobs in each state (states with none are left out).
    pub async fn counts(&self) -> Result<Vec<(JobState, i64)>> {
        let rows = sqlx::query(
            self.sql("SELECT state, COUNT(*) FROM strata_jobs GROUP BY state ORDER BY state"),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(0).map_err(|e| self.db(e))?;
                Ok((
                    JobState::parse(&state),
                    r.try_get(1).map_err(|e| self.db(e))?,
                ))
            })
            .collect()
    }

    pub async fn events(&self, id: i64) -> Result<Vec<JobEvent>> {
        let rows =
            sqlx::query(self.sql(
                "SELECT at, kind, detail FROM strata_job_events WHERE job_id = $1 ORDER BY id",
            ))
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        rows.iter()
            .map(|r| {
                Ok(JobEvent {
                    at: r.try_get(0).map_err(|e| self.db(e))?,
                    kind: r.try_get(1).map_err(|e| self.db(e))?,
                    detail: r.try_get(2).map_err(|e| self.db(e))?,
                })
            })
            .collect()
    }

    fn job_from(&self, r: &AnyRow) -> Result<Job> {
        let g = |e| self.db(e);
        let request: String = r.try_get("request").map_err(g)?;
        let state: String = r.try_get("state").map_err(g)?;
        let attempts: i64 = r.try_get("attempts").map_err(g)?;
        Ok(Job {
            id: r.try_get("id").map_err(g)?,
            request: serde_json::from_str(&request)
                .map_err(|e| QueueError::Invalid(format!("stored request does not parse: {e}")))?,
            state: JobState::parse(&state),
            attempts: attempts as u32,
            progress: r.try_get("progress").map_err(g)?,
            fps: r.try_get("fps").map_err(g)?,
            error: r.try_get("error").map_err(g)?,
            worker: r.try_get("worker").map_err(g)?,
            lease_until: r.try_get("lease_until").map_err(g)?,
            run_after: r.try_get("run_after").map_err(g)?,
            created_at: r.try_get("created_at").map_err(g)?,
            updated_at: r.try_get("updated_at").map_err(g)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_cap() {
        let b = Duration::from_secs(10);
        assert_eq!(retry_delay(b, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(b, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(b, 3), Duration::from_secs(40));
        assert_eq!(retry_delay(b, 30), MAX_RETRY_DELAY);
    }

    #[test]
    fn requests_are_validated() {
        assert!(JobRequest::new("in.mp4", "s3://vod/x").validate().is_ok());
        assert!(JobRequest::new("in.mp4", "s3://Bad/x").validate().is_err());
        let mut r = JobRequest::new("in.mp4", "out");
        r.format = "webm".into();
        assert!(r.validate().unwrap_err().to_string().contains("webm"));
        let mut r = JobRequest::new("in.mp4", "out");
        r.max_attempts = 0;
        assert!(r.validate().is_err());
    }
}
