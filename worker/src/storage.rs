//! Opening the job's input and output wherever they live: local paths or
//! S3. S3 inputs are downloaded to a scratch directory first (after checking
//! the free space), which is removed on every exit path with the job.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use strata_packager::upload::UploadObserver;
use strata_packager::{LocalStore, Location, S3Settings, S3Store, Store, UploadQueue};

use crate::cli::S3Args;
use crate::{InputError, UsageError};

/// Segments waiting for an uploader before the encoder is held back.
const UPLOAD_QUEUE_DEPTH: usize = 8;
/// Uploads in flight at once (S3 latency hides behind concurrency).
const S3_UPLOADERS: usize = 4;
const LOCAL_UPLOADERS: usize = 2;
/// Free space to keep beyond the downloaded input, for the OS and logs.
const SCRATCH_HEADROOM: u64 = 256 * 1024 * 1024;

pub fn parse_location(arg: &str) -> Result<Location> {
    Location::parse(arg).map_err(|e| UsageError(e.to_string()).into())
}

fn settings(bucket: &str, prefix: &str, s3: &S3Args) -> Result<S3Settings> {
    if s3.s3_part_mib < 5 {
        return Err(UsageError(format!(
            "--s3-part-mib {} is below S3's minimum of 5",
            s3.s3_part_mib
        ))
        .into());
    }
    let mut settings = S3Settings::new(bucket, prefix);
    settings.endpoint = s3.s3_endpoint.clone();
    settings.region = s3.s3_region.clone();
    settings.sse = s3.sse.clone();
    settings.storage_class = s3.storage_class.clone();
    settings.part_size = s3.s3_part_mib * 1024 * 1024;
    Ok(settings)
}

/// The output store, behind an upload queue so segments go out while later
/// ones are still encoding.
pub fn open_output(
    location: &Location,
    s3: &S3Args,
    observer: UploadObserver,
) -> Result<Arc<dyn Store>> {
    let (inner, uploaders): (Arc<dyn Store>, usize) = match location {
        Location::Local(path) => (
            Arc::new(LocalStore::open(path).with_context(|| {
                format!("cannot use {} as the output directory", path.display())
            })?),
            LOCAL_UPLOADERS,
        ),
        Location::S3 { bucket, prefix } => (
            Arc::new(
                S3Store::open(settings(bucket, prefix, s3)?)
                    .with_context(|| format!("cannot write to {location}"))?,
            ),
            S3_UPLOADERS,
        ),
    };
    Ok(Arc::new(UploadQueue::new(
        inner,
        UPLOAD_QUEUE_DEPTH,
        uploaders,
        Some(observer),
    )))
}

/// A local file to read the input from; for S3, a downloaded copy that is
/// deleted when this value is dropped.
pub struct Input {
    pub path: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

pub fn fetch_input(location: &Location, s3: &S3Args) -> Result<Input> {
    let (bucket, key) = match location {
        Location::Local(path) => {
            return Ok(Input {
                path: path.clone(),
                _scratch: None,
            });
        }
        Location::S3 { bucket, prefix } => (bucket, prefix),
    };
    if key.is_empty() {
        return Err(UsageError(format!(
            "{location}: an input URI must name an object, not a bucket"
        ))
        .into());
    }
    let bad = |e: strata_packager::PackagerError| {
        InputError(format!("{location}: {}", strata_packager::error::chain(&e)))
    };
    let store = S3Store::open(settings(bucket, "", s3)?).map_err(bad)?;
    let size = store
        .size(key)
        .map_err(bad)?
        .ok_or_else(|| InputError(format!("{location}: no such object")))?;
    let scratch = tempfile::Builder::new()
        .prefix("strata-input-")
        .tempdir()
        .context("cannot create a scratch directory")?;
    let free = free_space(scratch.path())?;
    if size + SCRATCH_HEADROOM > free {
        return Err(InputError(format!(
            "{location}: {size} bytes will not fit in {} ({free} bytes free)",
            scratch.path().display()
        ))
        .into());
    }
    let name = key.rsplit('/').next().unwrap_or("input");
    let path = scratch.path().join(name);
    let data = store.get(key).map_err(bad)?;
    std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Input {
        path,
        _scratch: Some(scratch),
    })
}

fn free_space(dir: &std::path::Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable
    // memory of the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs {}", dir.display()));
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}
