//! The worker side of Strata as a library: the job queue that `strata`
//! commands and `strata worker` share.

pub mod queue;
