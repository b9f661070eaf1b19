//! Progress for people and machines: an indicatif bar on a terminal, JSON
//! lines on stdout with `--json`, nothing otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use strata_engine::{Probe, Progress};

pub struct Events {
    json: bool,
    bar: Option<ProgressBar>,
    out: Mutex<std::io::Stdout>,
    /// Latest (fraction, fps), for the worker's heartbeat.
    latest: Mutex<(f64, f64)>,
}

impl Events {
    pub fn new(json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}",
                )
                .expect("static template"),
            );
            bar
        });
        Self::with(json, bar)
    }

    fn with(json: bool, bar: Option<ProgressBar>) -> Self {
        Events {
            json,
            bar,
            out: Mutex::new(std::io::stdout()),
            latest: Mutex::new((0.0, 0.0)),
        }
    }

    fn emit(&self, value: serde_json::Value) {
        if self.json {
            let mut out = self.out.lock().unwrap();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    pub fn probe(&self, probe: &Probe) {
        self.emit(json!({"event": "probe", "probe": probe}));
    }

    pub fn progress(&self, p: &Progress) {
        let fraction = if p.duration.is_zero() {
            0.0
        } else {
            p.position.as_secs_f64() / p.duration.as_secs_f64()
        };
        *self.latest.lock().unwrap() = (fraction.clamp(0.0, 1.0), p.fps);
        if let Some(bar) = &self.bar {
            bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
            bar.set_message(format!(
                "{:.1}/{:.1} s, {:.0} fps",
                p.position.as_secs_f64(),
                p.duration.as_secs_f64(),
                p.fps
            ));
        }
        self.emit(json!({
            "event": "progress",
            "fraction": fraction,
            "position": p.position.as_secs_f64(),
            "duration": p.duration.as_secs_f64(),
            "frames": p.frames,
            "fps": p.fps,
        }));
    }

    pub fn segment(&self, rendition: &str, index: u32, bytes: usize) {
        self.emit(
            json!({"event": "segment", "rendition": rendition, "index": index, "bytes": bytes}),
        );
    }

    /// Silent: only remembers the latest progress (jobs run by a worker).
    pub fn quiet() -> Self {
        Self::with(false, None)
    }

    /// Latest (fraction done, fps).
    pub fn latest(&self) -> (f64, f64) {
        *self.latest.lock().unwrap()
    }

    /// An object reached the store.
    pub fn uploaded(&self, key: &str, bytes: u64) {
        self.emit(json!({"event": "uploaded", "key": key, "bytes": bytes}));
    }

    /// The pipeline finished encoding (uploads may still be in flight).
    pub fn encoded(&self) {
        self.emit(json!({"event": "encoded"}));
    }

    pub fn done(&self, master: &str, report: &serde_json::Value) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.emit(json!({"event": "done", "master": master, "report": report}));
    }

    pub fn error(&self, code: i32, message: &str) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
        self.emit(json!({"event": "error", "code": code, "message": message}));
    }
}
