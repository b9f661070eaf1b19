//! `upload`: a bounded, concurrent upload queue in front of a [`Store`]
//! (house style rule 9).
//!
//! ```text
//! put ─► [bounded channel] ─► N uploader threads ─► inner store
//!  ▲ blocks when full (backpressure: a slow store slows the encoder)
//! flush ─► waits until every queued object is stored; first error wins
//! ```
//!
//! A failed upload makes every later `put` fail at once, so the pipeline
//! stops instead of encoding into the void.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::error::{PackagerError, Result, chain};
use crate::store::Store;

/// Told about every object once it is stored: (key, bytes).
pub type UploadObserver = Box<dyn Fn(&str, u64) + Send + Sync>;

#[derive(Debug, Default)]
pub struct UploadCounters {
    pub queued: AtomicU64,
    pub uploaded: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
}

struct Job {
    key: String,
    data: Vec<u8>,
    content_type: String,
}

struct Shared {
    inner: Arc<dyn Store>,
    /// Objects queued or in flight.
    pending: Mutex<usize>,
    idle: Condvar,
    error: Mutex<Option<String>>,
    counters: UploadCounters,
    observer: Option<UploadObserver>,
}

pub struct UploadQueue {
    shared: Arc<Shared>,
    tx: Mutex<Option<SyncSender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl UploadQueue {
    /// `depth` objects may wait; `workers` upload at once.
    pub fn new(
        inner: Arc<dyn Store>,
        depth: usize,
        workers: usize,
        observer: Option<UploadObserver>,
    ) -> Self {
        let (tx, rx) = sync_channel::<Job>(depth.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared {
            inner,
            pending: Mutex::new(0),
            idle: Condvar::new(),
            error: Mutex::new(None),
            counters: UploadCounters::default(),
            observer,
        });
        let handles = (0..workers.max(1))
            .map(|i| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("strata-upload-{i}"))
                    .spawn(move || upload_loop(&rx, &shared))
                    .expect("spawn uploader thread")
            })
            .collect();
        UploadQueue {
            shared,
            tx: Mutex::new(Some(tx)),
            workers: Mutex::new(handles),
        }
    }

    pub fn counters(&self) -> &UploadCounters {
        &self.shared.counters
    }

    fn failed(&self) -> Option<PackagerError> {
        self.shared
            .error
            .lock()
            .unwrap()
            .clone()
            .map(|message| PackagerError::Upload { message })
    }
}

fn upload_loop(rx: &Mutex<Receiver<Job>>, shared: &Shared) {
    loop {
        let job = match rx.lock().unwrap().recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // After a failure, queued objects are dropped: the job is lost anyway.
        if shared.error.lock().unwrap().is_none() {
            match shared.inner.put(&job.key, &job.data, &job.content_type) {
                Ok(()) => {
                    shared.counters.uploaded.fetch_add(1, Ordering::Relaxed);
                    shared
                        .counters
                        .bytes
                        .fetch_add(job.data.len() as u64, Ordering::Relaxed);
                    if let Some(observe) = &shared.observer {
                        observe(&job.key, job.data.len() as u64);
                    }
                }
                Err(e) => {
                    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    shared.error.lock().unwrap().get_or_insert(chain(&e));
                }
            }
        }
        let mut pending = shared.pending.lock().unwrap();
        *pending -= 1;
        if *pending == 0 {
            shared.idle.notify_all();
        }
    }
}

impl Store for UploadQueue {
    fn put(&self, key: &str, data: &[u8], content_type: &str) -> Result<()> {
        crate::store::validate_key(key)?;
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let tx = self
            .tx
            .lock()
            .unwrap()
            .clone()
            .ok_or(PackagerError::Upload {
                message: "queue closed".into(),
            })?;
        *self.shared.pending.lock().unwrap() += 1;
        self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            key: key.into(),
            data: data.to_vec(),
            content_type: content_type.into(),
        };
        // Blocks while the queue is full: that is the backpressure.
        if tx.send(job).is_err() {
            *self.shared.pending.lock().unwrap() -= 1;
            return Err(PackagerError::Upload {
                message: "uploader threads are gone".into(),
            });
        }
        Ok(())
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.shared.inner.size(key)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.shared.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
        self.shared.inner.list(prefix)
    }

    fn locate(&self, key: &str) -> String {
        self.shared.inner.locate(key)
    }

    fn flush(&self) -> Result<()> {
        let mut pending = self.shared.pending.lock().unwrap();
        while *pending > 0 {
            pending = self.shared.idle.wait(pending).unwrap();
        }
        drop(pending);
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for UploadQueue {
    fn drop(&mut self) {
        self.tx.lock().unwrap().take();
        for h in self.workers.lock().unwrap().drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    /// Fails every put of a key containing "bad", like a store that lost
    /// its connection mid-job.
    struct Flaky(LocalStore);

    impl Store for Flaky {
        fn put(&self, key: &str, data: &[u8], ct: &str) -> Result<()> {
            if key.contains("bad") {
                return Err(PackagerError::Upload {
                    message: format!("refused {key}"),
                });
            }
            self.0.put(key, data, ct)
        }
        fn size(&self, key: &str) -> Result<Option<u64>> {
            self.0.size(key)
        }
        fn delete(&self, key: &str) -> Result<()> {
            self.0.delete(key)
        }
        fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
            self.0.list(prefix)
        }
        fn locate(&self, key: &str) -> String {
            self.0.locate(key)
        }
    }

    #[test]
    fn uploads_everything_then_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = seen.clone();
        let q = UploadQueue::new(
            Arc::new(LocalStore::open(dir.path()).unwrap()),
            2,
            3,
            Some(Box::new(move |_, n| {
                seen2.fetch_add(n, Ordering::Relaxed);
            })),
        );
        for i in 0..20 {
            q.put(&format!("a/{i}.m4s"), &[0u8; 10], "video/iso.segment")
                .unwrap();
        }
        q.flush().unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 200);
        assert_eq!(q.counters().uploaded.load(Ordering::Relaxed), 20);
        assert_eq!(q.size("a/19.m4s").unwrap(), Some(10));
    }

    #[test]
    fn a_failure_surfaces_and_stops_later_puts() {
        let dir = tempfile::tempdir().unwrap();
        let q = UploadQueue::new(
            Arc::new(Flaky(LocalStore::open(dir.path()).unwrap())),
            1,
            1,
            None,
        );
        q.put("a/bad.m4s", b"x", "video/iso.segment").unwrap();
        let e = q.flush().unwrap_err().to_string();
        assert!(e.contains("refused a/bad.m4s"), "{e}");
        assert!(q.put("a/good.m4s", b"x", "video/iso.segment").is_err());
    }
}
