//! Strata's media engine: probe an input, fit a ladder, plan the job as plain
//! data, and execute the plan as a GStreamer pipeline that streams segments
//! out as they close.
//!
//! ```text
//! probe ─► ladder ─► plan(&Probe, &JobSpec, &Capabilities) ─► exec::run ─► SegmentSink
//! ```

pub mod bench;
pub mod caps;
pub mod encoders;
pub mod error;
pub mod exec;
pub mod ladder;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod slides;

pub use caps::Capabilities;
pub use error::{EngineError, ErrorClass, Result};
pub use exec::{ExecStats, MediaKind, Part, Progress, SegmentOut, SegmentSink};
pub use ladder::{Ladder, Rung};
pub use plan::{Format, FrameMemory, HwChoice, JobSpec, Plan, Step, plan};
pub use probe::{Probe, init, probe};
