//! The job queue against real databases: a SQLite file and the PostgreSQL
//! cluster that scripts/test.sh starts (`STRATA_TEST_POSTGRES_URL`, an admin
//! URL; each test gets a database of its own).

use std::collections::HashMap;
use std::time::Duration;

use strata_worker::queue::{JobRequest, JobState, Queue};

mod common;
use common::fresh_postgres_database;

/// A fresh queue on each backend; the TempDir keeps the SQLite file alive.
async fn backends() -> Vec<(String, Queue, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let sqlite = Queue::connect(&sqlite_url).await.unwrap();
    let pg_url = fresh_postgres_database().await;
    let pg = Queue::connect(&pg_url).await.unwrap();
    vec![(sqlite_url, sqlite, Some(dir)), (pg_url, pg, None)]
}

async fn kinds(q: &Queue, id: i64) -> Vec<String> {
    q.events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn req(n: usize) -> JobRequest {
    JobRequest::new(&format!("in/{n}.mp4"), &format!("out/{n}"))
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn submit_claim_succeed_with_event_log() {
    for (url, q, _keep) in backends().await {
        let (id, created) = q.submit(&req(1)).await.unwrap();
        assert!(created, "{url}");
        let job = q.claim("w1", LEASE).await.unwrap().expect("a job");
        assert_eq!(
            (job.id, job.state, job.attempts),
            (id, JobState::Running, 1),
            "{url}"
        );
        assert_eq!(job.request.input, "in/1.mp4");
        assert!(
            q.claim("w2", LEASE).await.unwrap().is_none(),
            "{url}: claimed twice"
        );
        assert!(q.heartbeat(id, "w1", LEASE, 0.5, 42.0).await.unwrap());
        let mid = q.get(id).await.unwrap();
        assert_eq!(
            (mid.progress, mid.fps, mid.worker.as_deref()),
            (0.5, 42.0, Some("w1"))
        );
        assert!(
            !q.succeed(id, "w2").await.unwrap(),
            "{url}: another worker finished it"
        );
        assert!(q.succeed(id, "w1").await.unwrap());
        assert_eq!(q.get(id).await.unwrap().state, JobState::Succeeded);
        let kinds = kinds(&q, id).await;
        assert_eq!(kinds, ["submitted", "claimed", "succeeded"], "{url}");
    }
}

#[tokio::test]
async fn priority_then_age() {
    for (url, q, _keep) in backends().await {
        let (a, _) = q.submit(&req(1)).await.unwrap();
        let mut high = req(2);
        high.priority = 5;
        let (b, _) = q.submit(&high).await.unwrap();
        let (c, _) = q.submit(&req(3)).await.unwrap();
        let order: Vec<i64> = [
            q.claim("w", LEASE).await.unwrap().unwrap().id,
            q.claim("w", LEASE).await.unwrap().unwrap().id,
            q.claim("w", LEASE).await.unwrap().unwrap().id,
        ]
        .into();
        assert_eq!(order, vec![b, a, c], "{url}");
    }
}

#[tokio::test]
async fn idempotent_submit() {
    for (url, q, _keep) in backends().await {
        let mut r = req(1);
        r.idempotency_key = Some("upload-7f3a".into());
        let (first, created) = q.submit(&r).await.unwrap();
        let (second, again) = q.submit(&r).await.unwrap();
        assert!(created && !again, "{url}");
        assert_eq!(first, second);
        assert_eq!(q.list(None).await.unwrap().len(), 1, "{url}");
        assert!(
            q.submit(&JobRequest::new("in.mp4", "s3://Bad/x"))
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn expired_lease_is_reclaimed_by_another_worker() {
    for (url, q, _keep) in backends().await {
        let (id, _) = q.submit(&req(1)).await.unwrap();
        q.claim("crashed", Duration::from_millis(200))
            .await
            .unwrap()
            .unwrap();
        assert!(q.claim("w2", LEASE).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let job = q.claim("w2", LEASE).await.unwrap().expect("reclaimed");
        assert_eq!(
            (job.id, job.attempts, job.worker.as_deref()),
            (id, 2, Some("w2")),
            "{url}"
        );
        // The old worker has lost it.
        assert!(
            !q.heartbeat(id, "crashed", LEASE, 0.1, 1.0).await.unwrap(),
            "{url}"
        );
        assert!(q.succeed(id, "w2").await.unwrap());
    }
}

#[tokio::test]
async fn retries_with_backoff_then_dead_letter() {
    for (url, q, _keep) in backends().await {
        let q = q.with_retry_base(Duration::from_millis(300));
        let mut r = req(1);
        r.max_attempts = 2;
        let (id, _) = q.submit(&r).await.unwrap();
        q.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(
            q.fail(id, "w", "decoder exploded").await.unwrap(),
            JobState::Queued
        );
        // Not runnable until the backoff has passed.
        assert!(
            q.claim("w", LEASE).await.unwrap().is_none(),
            "{url}: retried too early"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let again = q.claim("w", LEASE).await.unwrap().expect("retried");
        assert_eq!(again.attempts, 2);
        assert_eq!(
            q.fail(id, "w", "decoder exploded again").await.unwrap(),
            JobState::Failed
        );
        let job = q.get(id).await.unwrap();
        assert_eq!(job.error.as_deref(), Some("decoder exploded again"));
        let kinds = kinds(&q, id).await;
        assert_eq!(
            kinds,
            ["submitted", "claimed", "retried", "claimed", "failed"],
            "{url}"
        );
        // An operator's retry starts it over.
        q.retry(id).await.unwrap();
        assert_eq!(q.claim("w", LEASE).await.unwrap().unwrap().attempts, 1);
    }
}

#[tokio::test]
async fn cancel_queued_and_running() {
    for (url, q, _keep) in backends().await {
        let (a, _) = q.submit(&req(1)).await.unwrap();
        let (b, _) = q.submit(&req(2)).await.unwrap();
        q.cancel(b).await.unwrap();
        let running = q.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(running.id, a, "{url}: a cancelled job was claimed");
        q.cancel(a).await.unwrap();
        // The worker learns at its next heartbeat and must stop.
        assert!(!q.heartbeat(a, "w", LEASE, 0.3, 1.0).await.unwrap());
        assert!(!q.succeed(a, "w").await.unwrap());
        assert_eq!(q.get(a).await.unwrap().state, JobState::Cancelled);
        assert!(q.cancel(a).await.is_err(), "{url}: cancelled twice");
        assert_eq!(q.list(Some(JobState::Cancelled)).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn concurrent_workers_never_run_a_job_twice_nor_lose_one() {
    for (url, q, _keep) in backends().await {
        for n in 0..200 {
            q.submit(&req(n)).await.unwrap();
        }
        // Three workers, each with its own connection pool.
        let mut tasks = Vec::new();
        for w in 0..3 {
            let wq = Queue::connect(&url).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let name = format!("w{w}");
                let mut ran = Vec::new();
                while let Some(job) = wq.claim(&name, LEASE).await.unwrap() {
                    ran.push(job.id);
                    assert!(wq.succeed(job.id, &name).await.unwrap());
                }
                ran
            }));
        }
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for t in tasks {
            for id in t.await.unwrap() {
                *counts.entry(id).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), 200, "{url}: jobs lost");
        assert!(counts.values().all(|&c| c == 1), "{url}: a job ran twice");
        assert_eq!(q.list(Some(JobState::Succeeded)).await.unwrap().len(), 200);
    }
}
