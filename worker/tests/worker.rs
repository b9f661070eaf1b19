//! `strata submit/status/jobs/cancel/retry` and `strata worker` as
//! processes, on a SQLite queue file.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Env {
    dir: tempfile::TempDir,
    queue: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let queue = format!("sqlite://{}", dir.path().join("queue.db").display());
        Env { dir, queue }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["--queue", &self.queue]);
        strata(&all)
    }

    fn submit(&self, input: &str, out: &str, extra: &[&str]) -> i64 {
        let mut args = vec!["submit", input, "-o", out];
        args.extend_from_slice(extra);
        let o = self.run(&args);
        assert_ok(&o);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn state(&self, id: i64) -> serde_json::Value {
        let o = self.run(&["status", &id.to_string(), "--json"]);
        assert_ok(&o);
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn worker(&self, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["worker", "--queue", &self.queue, "--poll-ms", "100"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_for(&self, id: i64, state: &str, limit: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.state(id);
            if s["job"]["state"] == state {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "job {id} never became {state}: {s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn out(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    // A few tries: the listener may still be coming up.
    let mut last = None;
    for _ in 0..50 {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        match attempt {
            Ok(text) if text.starts_with("HTTP/1.1 200") => return text,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {path} on port {port} failed: {last:?}");
}

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn submit_run_cancel_retry_and_drain() {
    let env = Env::new();
    let good = fixture("audio-only");
    let good = good.to_str().unwrap();
    let bad = fixture("bad-text");

    let a = env.submit(good, &env.out("a"), &["--idempotency-key", "upload-a"]);
    assert_eq!(
        env.submit(good, &env.out("a"), &["--idempotency-key", "upload-a"]),
        a,
        "idempotent submit"
    );
    let b = env.submit(
        bad.to_str().unwrap(),
        &env.out("b"),
        &["--max-attempts", "1"],
    );
    let c = env.submit(good, &env.out("c"), &[]);
    assert_ok(&env.run(&["cancel", &c.to_string()]));
    let listed = env.run(&["jobs", "--state", "queued", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&listed.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut worker = env.worker(&["--concurrency", "1", "--metrics-port", &port.to_string()]);
    env.wait_for(a, "succeeded", Duration::from_secs(120));
    let failed = env.wait_for(b, "failed", Duration::from_secs(120));
    assert!(
        failed["job"]["error"]
            .as_str()
            .unwrap()
            .contains("bad-text"),
        "{failed}"
    );
    assert!(
        std::path::Path::new(&env.out("a"))
            .join("master.m3u8")
            .exists()
    );
    assert_eq!(env.state(c)["job"]["state"], "cancelled");
    assert!(
        !std::path::Path::new(&env.out("c")).exists(),
        "a cancelled job ran"
    );

    // An operator's retry puts the cancelled job back; the worker runs it.
    assert_ok(&env.run(&["retry", &c.to_string()]));
    let done = env.wait_for(c, "succeeded", Duration::from_secs(120));
    let kinds: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["submitted", "cancelled", "retried", "claimed", "succeeded"]
    );

    let metrics = http_get(port, "/metrics");
    for line in [
        "strata_jobs{state=\"succeeded\"} 2",
        "strata_jobs{state=\"failed\"} 1",
        "strata_queue_depth 0",
        "strata_worker_jobs_total{result=\"succeeded\"} 2",
        "strata_worker_jobs_total{result=\"failed\"} 1",
        "strata_lease_losses_total 0",
        "strata_job_duration_seconds_count 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in:\n{metrics}"
        );
    }
    assert!(http_get(port, "/healthz").ends_with("ok\n"));

    // SIGTERM drains and exits cleanly.
    signal(&worker, "-TERM");
    let status = worker.wait().unwrap();
    assert!(status.success(), "worker exit {status:?}");
}

#[test]
fn a_killed_workers_job_is_finished_by_another() {
    let env = Env::new();
    let input = fixture("1080p30-av");
    let id = env.submit(input.to_str().unwrap(), &env.out("job"), &[]);
    let mut first = env.worker(&["--lease-secs", "3"]);
    env.wait_for(id, "running", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    signal(&first, "-KILL");
    let _ = first.wait();
    assert!(
        !std::path::Path::new(&env.out("job"))
            .join("master.m3u8")
            .exists()
    );

    let mut second = env.worker(&["--lease-secs", "3"]);
    let done = env.wait_for(id, "succeeded", Duration::from_secs(180));
    assert_eq!(done["job"]["attempts"], 2, "{done}");
    let claims = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "claimed")
        .count();
    assert_eq!(claims, 2);
    // The output is complete and valid.
    let out = std::path::PathBuf::from(env.out("job"));
    let m = master(&out);
    assert_eq!(m.variants.len(), 4);
    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success());
}

#[test]
fn three_workers_200_jobs_each_run_exactly_once() {
    let env = Env::new();
    let input = fixture("tiny-audio");
    let batch = env.dir.path().join("batch.txt");
    let lines: String = (0..200)
        .map(|i| format!("{} {}\n", input.display(), env.out(&format!("o{i}"))))
        .collect();
    std::fs::write(&batch, lines).unwrap();
    assert_ok(&env.run(&["submit", "--batch", batch.to_str().unwrap()]));

    let mut workers: Vec<Child> = (0..3)
        .map(|_| env.worker(&["--concurrency", "1"]))
        .collect();
    let start = Instant::now();
    loop {
        let o = env.run(&["jobs", "--state", "succeeded", "--json"]);
        let done = serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
        if done == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {done} of 200 jobs succeeded"
        );
        for w in &mut workers {
            assert!(w.try_wait().unwrap().is_none(), "a worker exited early");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for w in &workers {
        signal(w, "-TERM");
    }
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let q = strata_worker::queue::Queue::connect(&env.queue)
            .await
            .unwrap();
        let jobs = q.list(None).await.unwrap();
        assert_eq!(jobs.len(), 200);
        let mut workers_used = std::collections::HashSet::new();
        for j in jobs {
            let claims = q
                .events(j.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == "claimed")
                .count();
            assert_eq!(claims, 1, "job {} was run {claims} times", j.id);
            assert_eq!(j.attempts, 1);
            workers_used.insert(j.worker.unwrap());
            assert!(
                std::path::Path::new(&j.request.output)
                    .join("master.m3u8")
                    .exists()
            );
        }
        assert_eq!(workers_used.len(), 3, "every worker took jobs");
    });
}

#[test]
fn postgres_wakes_idle_workers_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(fresh_postgres_database());
    let dir = tempfile::tempdir().unwrap();
    let env = Env { queue: url, dir };
    // A poll interval far longer than the test: only NOTIFY can wake it.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["worker", "--queue", &env.queue, "--poll-ms", "600000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it connect and go idle first.
    std::thread::sleep(Duration::from_secs(2));
    let id = env.submit(fixture("tiny-audio").to_str().unwrap(), &env.out("o"), &[]);
    env.wait_for(id, "succeeded", Duration::from_secs(30));
    signal(&worker, "-TERM");
    assert!(worker.wait().unwrap().success());
}

#[test]
fn cancelling_a_running_job_stops_it_within_seconds() {
    let env = Env::new();
    let id = env.submit(
        fixture("1080p30-av").to_str().unwrap(),
        &env.out("job"),
        &[],
    );
    let mut worker = env.worker(&[]);
    env.wait_for(id, "running", Duration::from_secs(60));
    assert_ok(&env.run(&["cancel", &id.to_string()]));
    let cancelled_at = Instant::now();
    // The worker notices at its next heartbeat (2 s) and stops the pipeline:
    // nothing is published, and the worker is free again.
    let next = env.submit(
        fixture("tiny-audio").to_str().unwrap(),
        &env.out("next"),
        &[],
    );
    env.wait_for(next, "succeeded", Duration::from_secs(60));
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(15),
        "cancel took {:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(env.state(id)["job"]["state"], "cancelled");
    assert!(
        !std::path::Path::new(&env.out("job"))
            .join("master.m3u8")
            .exists()
    );
    signal(&worker, "-TERM");
    assert!(worker.wait().unwrap().success());
}

#[test]
fn a_second_signal_releases_running_jobs_at_once_and_logs_json() {
    let env = Env::new();
    let id = env.submit(
        fixture("1080p30-av").to_str().unwrap(),
        &env.out("job"),
        &[],
    );
    let log = env.dir.path().join("worker.log");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["worker", "--queue", &env.queue, "--poll-ms", "100"])
        .args(["--grace-secs", "600", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    env.wait_for(id, "running", Duration::from_secs(60));
    // The first signal drains: with a 600 s grace the job keeps running.
    signal(&worker, "-TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(env.state(id)["job"]["state"], "running");
    assert!(worker.try_wait().unwrap().is_none(), "worker left early");
    // The second one stops the pipeline and releases the job now.
    signal(&worker, "-TERM");
    let asked = Instant::now();
    let status = loop {
        if let Some(s) = worker.try_wait().unwrap() {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "worker still running 20 s after the second signal"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "worker exit {status:?}");
    let job = env.state(id);
    assert_eq!(job["job"]["state"], "queued", "{job}");
    assert_eq!(
        job["job"]["attempts"], 0,
        "a released attempt is not counted"
    );
    assert!(
        job["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "released"),
        "{job}"
    );
    assert!(
        !std::path::Path::new(&env.out("job"))
            .join("master.m3u8")
            .exists()
    );

    // Every log line is one JSON object; the job's story is in them.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
    };
    let claimed = find("job claimed");
    assert_eq!(claimed["job"], id);
    assert_eq!(claimed["level"], "INFO");
    assert!(claimed["claim_ms"].as_f64().unwrap() >= 0.0);
    find("second signal: releasing running jobs now");
    assert_eq!(find("job stopped and released to the queue")["job"], id);
    find("worker stopped");
}

#[test]
fn gpu_slots_are_permits_apart_from_cpu_slots() {
    let env = Env::new();
    let input = fixture("1080p30-av");
    let a = env.submit(input.to_str().unwrap(), &env.out("a"), &[]);
    let b = env.submit(input.to_str().unwrap(), &env.out("b"), &[]);
    let log = env.dir.path().join("worker.log");
    // One CPU slot and one GPU slot: two jobs at once. (Without a GPU the
    // GPU-slot job plans like any other and encodes on the CPU.)
    let mut worker = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["worker", "--queue", &env.queue, "--poll-ms", "100"])
        .args([
            "--concurrency",
            "1",
            "--gpu-jobs",
            "1",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    env.wait_for(a, "running", Duration::from_secs(60));
    env.wait_for(b, "running", Duration::from_secs(60));
    for id in [a, b] {
        assert_ok(&env.run(&["cancel", &id.to_string()]));
    }
    signal(&worker, "-TERM");
    assert!(worker.wait().unwrap().success());
    let slots: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["message"] == "job claimed")
        .map(|l| l["slot"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slots, ["gpu", "cpu"], "the GPU slot is taken first");
}

#[test]
fn a_queued_job_with_slides() {
    let env = Env::new();
    let times = env.dir.path().join("times.json");
    std::fs::write(&times, r#"[{"slide":1,"at":0},{"slide":2,"at":4}]"#).unwrap();
    let id = env.submit(
        fixture("video-only").to_str().unwrap(),
        &env.out("job"),
        &[
            "--slides",
            deck("lecture").to_str().unwrap(),
            "--slide-times",
            times.to_str().unwrap(),
        ],
    );
    // The times travel in the job itself.
    std::fs::remove_file(&times).unwrap();
    let job = env.state(id);
    assert_eq!(job["job"]["request"]["slide_times"][1]["at"], 4.0, "{job}");
    let mut worker = env.worker(&[]);
    env.wait_for(id, "succeeded", Duration::from_secs(180));
    signal(&worker, "-TERM");
    assert!(worker.wait().unwrap().success());
    let out = std::path::PathBuf::from(env.out("job"));
    assert_eq!(master(&out).session_data.len(), 1);
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("slides/slides.json")).unwrap()).unwrap();
    assert_eq!(j["slides"][1]["start"], 4.0);
    assert!(out.join("slides/master.m3u8").exists());
}
