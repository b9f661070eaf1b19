//! `s3`: the [`Store`] for S3 and S3-compatible servers, through aws-sdk-s3.
//!
//! Settings come from the standard AWS chain (environment, profile), plus an
//! optional endpoint (path-style addressing for S3-compatible servers),
//! server-side encryption and storage class. Every request is retried with
//! exponential backoff and full jitter on throttling, 5xx and connection
//! errors. Objects above the part size go up as multipart uploads; a failed
//! multipart upload is aborted, not left dangling.
//!
//! The store is called from GStreamer streaming threads and the upload
//! queue's threads, never from async code: it owns a small tokio runtime and
//! blocks on it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};

use crate::error::{PackagerError, Result, chain};
use crate::store::{Store, validate_key};

/// Objects larger than this are uploaded in parts of this size.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's smallest allowed part (except the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Cache-Control: segments never change once written; playlists may be
/// rewritten by a rerun, so caches must come back soon.
pub fn cache_control(key: &str) -> &'static str {
    if key.ends_with(".m3u8") || key.ends_with(".json") {
        "public, max-age=10"
    } else {
        "public, max-age=31536000, immutable"
    }
}

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:8014`; path-style.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    pub storage_class: Option<String>,
    pub part_size: usize,
    pub max_attempts: u32,
    /// Access key and secret; `None` uses the standard AWS chain.
    pub credentials: Option<(String, String)>,
}

impl S3Settings {
    pub fn new(bucket: &str, prefix: &str) -> Self {
        S3Settings {
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').into(),
            endpoint: None,
            region: None,
            sse: None,
            storage_class: None,
            part_size: DEFAULT_PART_SIZE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            credentials: None,
        }
    }
}

/// Counters an operator can read (and tests can check).
#[derive(Debug, Default)]
pub struct S3Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub multipart_uploads: AtomicU64,
    pub aborted_uploads: AtomicU64,
}

pub struct S3Store {
    client: Client,
    runtime: tokio::runtime::Runtime,
    settings: S3Settings,
    sse: Option<ServerSideEncryption>,
    storage_class: Option<StorageClass>,
    pub counters: S3Counters,
}

impl S3Store {
    /// Connect and check that the bucket exists.
    pub fn open(settings: S3Settings) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-s3")
            .enable_all()
            .build()
            .map_err(|e| PackagerError::S3 {
                op: "start",
                location: format!("s3://{}", settings.bucket),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?;
        if settings.part_size < MIN_PART_SIZE {
            return Err(PackagerError::S3 {
                op: "configure",
                location: format!("s3://{}", settings.bucket),
                message: format!(
                    "part size {} is below S3's minimum of {MIN_PART_SIZE}",
                    settings.part_size
                ),
                source: None,
            });
        }
        let sse = settings.sse.as_deref().map(ServerSideEncryption::from);
        let storage_class = settings.storage_class.as_deref().map(StorageClass::from);
        let client = runtime.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            let region = settings
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok());
            // S3-compatible servers often have no region; S3 needs one to sign.
            loader = loader.region(aws_config::Region::new(
                region.unwrap_or_else(|| "us-east-1".into()),
            ));
            if let Some((key, secret)) = &settings.credentials {
                loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                    key, secret, None, None, "strata",
                ));
            }
            let shared = loader.load().await;
            let mut cfg = aws_sdk_s3::config::Builder::from(&shared)
                // Our own retry loop below: it is the one we test.
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
            if let Some(endpoint) = &settings.endpoint {
                cfg = cfg.endpoint_url(endpoint).force_path_style(true);
            }
            Client::from_conf(cfg.build())
        });
        let store = S3Store {
            client,
            runtime,
            settings,
            sse,
            storage_class,
            counters: S3Counters::default(),
        };
        store.check_bucket()?;
        Ok(store)
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    fn endpoint(&self) -> String {
        self.settings
            .endpoint
            .clone()
            .unwrap_or_else(|| "AWS".into())
    }

    fn object_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(if self.settings.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.settings.prefix)
        })
    }

    fn check_bucket(&self) -> Result<()> {
        let bucket = self.settings.bucket.clone();
        let result =
            self.runtime
                .block_on(self.retry("head-bucket", &format!("s3://{bucket}"), || {
                    self.client.head_bucket().bucket(&bucket).send()
                }));
        match result {
            Ok(_) => Ok(()),
            Err(Failure::NotFound) => Err(PackagerError::NoSuchBucket {
                bucket,
                endpoint: self.endpoint(),
            }),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Run `op` until it succeeds, fails for good, or attempts run out.
    async fn retry<T, E, F, Fut>(
        &self,
        op: &'static str,
        location: &str,
        mut f: F,
    ) -> std::result::Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<
            Output = std::result::Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
        >,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let status = err.raw_response().map(|r| r.status().as_u16());
            if status == Some(404)
                || err
                    .code()
                    .is_some_and(|c| c == "NoSuchBucket" || c == "NoSuchKey" || c == "NotFound")
            {
                return Err(Failure::NotFound);
            }
            if !is_transient(&err, status) || attempt >= self.settings.max_attempts {
                let message = match (err.code(), err.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg}"),
                    (Some(code), None) => code.to_string(),
                    _ => chain(&err),
                };
                let message = if attempt > 1 {
                    format!("{message} (after {attempt} attempts)")
                } else {
                    message
                };
                return Err(Failure::Other(PackagerError::S3 {
                    op,
                    location: location.into(),
                    message,
                    source: Some(Box::new(err)),
                }));
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        location: &str,
        data: &[u8],
        content_type: &str,
    ) -> Result<()> {
        self.counters
            .multipart_uploads
            .fetch_add(1, Ordering::Relaxed);
        let bucket = &self.settings.bucket;
        let created = self
            .retry("create-multipart-upload", location, || {
                self.client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .content_type(content_type)
                    .cache_control(cache_control(key))
                    .set_server_side_encryption(self.sse.clone())
                    .set_storage_class(self.storage_class.clone())
                    .send()
            })
            .await
            .map_err(|f| f.into_error(location))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let parts = async {
            let mut parts = Vec::new();
            for (i, chunk) in data.chunks(self.settings.part_size).enumerate() {
                let number = i as i32 + 1;
                let out = self
                    .retry("upload-part", location, || {
                        self.client
                            .upload_part()
                            .bucket(bucket)
                            .key(key)
                            .upload_id(&upload_id)
                            .part_number(number)
                            .body(ByteStream::from(chunk.to_vec()))
                            .send()
                    })
                    .await
                    .map_err(|f| f.into_error(location))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(Into::into))
                        .build(),
                );
            }
            let completed = CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build();
            self.retry("complete-multipart-upload", location, || {
                self.client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(completed.clone())
                    .send()
            })
            .await
            .map_err(|f| f.into_error(location))
        }
        .await;
        if let Err(e) = parts {
            // Best effort: a dangling upload costs storage until aborted.
            self.counters
                .aborted_uploads
                .fetch_add(1, Ordering::Relaxed);
            let _ = self
                .retry("abort-multipart-upload", location, || {
                    self.client
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .send()
                })
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Read a whole object.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let object_key = self.object_key(key)?;
        let location = self.locate(key);
        self.runtime.block_on(async {
            let out = self
                .retry("get", &location, || {
                    self.client
                        .get_object()
                        .bucket(&self.settings.bucket)
                        .key(&object_key)
                        .send()
                })
                .await
                .map_err(|f| f.into_error(&location))?;
            let bytes = out.body.collect().await.map_err(|e| PackagerError::S3 {
                op: "get",
                location: location.clone(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?;
            Ok(bytes.into_bytes().to_vec())
        })
    }

    /// HEAD an object: `None` when it does not exist.
    fn head(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        let object_key = self.object_key(key)?;
        let location = self.locate(key);
        match self.runtime.block_on(self.retry("head", &location, || {
            self.client
                .head_object()
                .bucket(&self.settings.bucket)
                .key(&object_key)
                .send()
        })) {
            Ok(out) => Ok(Some(out)),
            Err(Failure::NotFound) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Content-Type and Cache-Control of an object, as the server reports them.
    pub fn headers(&self, key: &str) -> Result<(Option<String>, Option<String>)> {
        let out = self.head(key)?.ok_or_else(|| PackagerError::NotFound {
            location: self.locate(key),
        })?;
        Ok((
            out.content_type().map(Into::into),
            out.cache_control().map(Into::into),
        ))
    }
}

enum Failure {
    NotFound,
    Other(PackagerError),
}

impl Failure {
    fn into_error(self, location: &str) -> PackagerError {
        match self {
            Failure::NotFound => PackagerError::NotFound {
                location: location.into(),
            },
            Failure::Other(e) => e,
        }
    }
}

/// Throttling, server errors and failures to reach the server are worth
/// another try; anything else (auth, bad request, 501 Not Implemented) is not.
fn is_transient<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    status: Option<u16>,
) -> bool {
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| (s >= 500 && s != 501) || s == 429)
                || err.code().is_some_and(|c| {
                    matches!(
                        c,
                        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout"
                    )
                })
        }
        _ => false,
    }
}

/// Exponential backoff with full jitter: a random delay up to
/// `min(MAX_DELAY, BASE_DELAY * 2^attempt)`.
pub fn backoff(attempt: u32) -> Duration {
    let cap = BASE_DELAY
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_DELAY);
    cap.mul_f64(jitter())
}

/// A number in [0.5, 1): enough spread to keep retrying workers apart,
/// never so little that a retry hammers the server.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = STATE.fetch_add(seed | 1, Ordering::Relaxed) ^ seed;
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    0.5 + 0.5 * (r as f64 / (1u64 << 53) as f64)
}

impl Store for S3Store {
    fn put(&self, key: &str, data: &[u8], content_type: &str) -> Result<()> {
        let object_key = self.object_key(key)?;
        let location = self.locate(key);
        self.runtime.block_on(async {
            if data.len() > self.settings.part_size {
                return self
                    .put_multipart(&object_key, &location, data, content_type)
                    .await;
            }
            self.retry("put", &location, || {
                self.client
                    .put_object()
                    .bucket(&self.settings.bucket)
                    .key(&object_key)
                    .body(ByteStream::from(data.to_vec()))
                    .content_type(content_type)
                    .cache_control(cache_control(key))
                    .set_server_side_encryption(self.sse.clone())
                    .set_storage_class(self.storage_class.clone())
                    .send()
            })
            .await
            .map(|_| ())
            .map_err(|f| f.into_error(&location))
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .head(key)?
            .map(|out| out.content_length().unwrap_or(0).max(0) as u64))
    }

    fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
        let base = match self.settings.prefix.as_str() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let full = format!("{base}{prefix}");
        let location = self.locate(prefix);
        let mut found = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .runtime
                .block_on(self.retry("list", &location, || {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.settings.bucket)
                        .prefix(&full)
                        .set_continuation_token(token.clone())
                        .send()
                }))
                .map_err(|f| f.into_error(&location))?;
            for o in out.contents() {
                if let Some(key) = o.key().and_then(|k| k.strip_prefix(&base)) {
                    found.insert(key.to_string(), o.size().unwrap_or(0).max(0) as u64);
                }
            }
            token = out.next_continuation_token().map(Into::into);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let object_key = self.object_key(key)?;
        let location = self.locate(key);
        match self.runtime.block_on(self.retry("delete", &location, || {
            self.client
                .delete_object()
                .bucket(&self.settings.bucket)
                .key(&object_key)
                .send()
        })) {
            Ok(_) | Err(Failure::NotFound) => Ok(()),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    fn locate(&self, key: &str) -> String {
        match self.settings.prefix.as_str() {
            "" => format!("s3://{}/{key}", self.settings.bucket),
            p => format!("s3://{}/{p}/{key}", self.settings.bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let cap = BASE_DELAY
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_DELAY);
            assert!(
                d <= cap && d >= cap / 2,
                "attempt {attempt}: {d:?} vs cap {cap:?}"
            );
        }
        assert!(backoff(30) <= MAX_DELAY);
    }

    #[test]
    fn cache_control_by_kind() {
        assert_eq!(cache_control("video/720p/index.m3u8"), "public, max-age=10");
        assert!(cache_control("video/720p/seg_00001.m4s").contains("immutable"));
    }
}
