//! A real S3-speaking server for the tests: s3s-fs 0.14.1 on 127.0.0.1.
//!
//! scripts/test.sh installs it and starts one shared server
//! (`STRATA_TEST_S3_ENDPOINT`, `STRATA_TEST_S3_ROOT`); tests that must stop
//! their server start their own with [`S3Server::start`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_packager::{S3Settings, S3Store};

pub const ACCESS_KEY: &str = "strata-test";
pub const SECRET_KEY: &str = "strata-test-secret";

pub fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("STRATA_S3S_FS") {
        return p.into();
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/strata-tools/bin/s3s-fs");
    assert!(
        cached.exists(),
        "s3s-fs is not installed: run scripts/test.sh, or `cargo install --locked s3s-fs@0.14.1 --features binary --root ~/.cache/strata-tools`"
    );
    cached
}

pub struct S3Server {
    pub endpoint: String,
    pub root: PathBuf,
    port: u16,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl S3Server {
    /// The shared server from scripts/test.sh, or a private one.
    pub fn shared() -> Self {
        match (
            std::env::var("STRATA_TEST_S3_ENDPOINT"),
            std::env::var("STRATA_TEST_S3_ROOT"),
        ) {
            (Ok(endpoint), Ok(root)) => S3Server {
                endpoint,
                root: root.into(),
                port: 0,
                child: None,
                _dir: None,
            },
            _ => Self::start(),
        }
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            root: dir.path().to_path_buf(),
            port,
            child: None,
            _dir: Some(dir),
        };
        s.resume();
        s
    }

    /// (Re)start a private server on its port and root.
    pub fn resume(&mut self) {
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop a private server (the data stays on disk).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A fresh bucket with a name unique to this test run.
    pub fn bucket(&self, name: &str) -> String {
        let bucket = format!("{name}-{}", std::process::id());
        // s3s-fs keeps each bucket as a directory under its root.
        std::fs::create_dir_all(self.root.join(&bucket)).unwrap();
        bucket
    }

    pub fn settings(&self, bucket: &str, prefix: &str) -> S3Settings {
        let mut s = S3Settings::new(bucket, prefix);
        s.endpoint = Some(self.endpoint.clone());
        s.credentials = Some((ACCESS_KEY.into(), SECRET_KEY.into()));
        s
    }

    pub fn store(&self, bucket: &str, prefix: &str) -> S3Store {
        S3Store::open(self.settings(bucket, prefix)).expect("open S3 store")
    }

    /// Environment for a `strata` process that talks to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("STRATA_S3_ENDPOINT", self.endpoint.clone()),
        ]
    }

    pub fn upload(&self, bucket: &str, key: &str, file: &Path) {
        use strata_packager::Store;
        self.store(bucket, "")
            .put(key, &std::fs::read(file).unwrap(), "video/mp4")
            .unwrap();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
