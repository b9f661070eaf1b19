//! `location`: where a job reads from or writes to — a local path or an
//! `s3://bucket/prefix` URI — validated before any work starts.

use std::path::PathBuf;

use crate::error::{PackagerError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parse a command-line argument. Anything that does not start with a
    /// URI scheme is a local path; `s3://` is S3; other schemes are refused.
    pub fn parse(arg: &str) -> Result<Self> {
        let bad = |reason: &'static str| PackagerError::BadUri {
            uri: arg.into(),
            reason,
        };
        let Some((scheme, rest)) = arg.split_once("://") else {
            if arg.is_empty() {
                return Err(bad("it is empty"));
            }
            return Ok(Location::Local(PathBuf::from(arg)));
        };
        match scheme {
            "s3" => {}
            "file" => return Ok(Location::Local(PathBuf::from(rest))),
            _ => return Err(bad("only s3:// URIs and local paths are supported")),
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3 bucket naming rules: 3-63 of lower-case letters, digits, '-', '.'.
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            || bucket.starts_with(['-', '.'])
            || bucket.ends_with(['-', '.'])
        {
            return Err(bad(
                "the bucket name must be 3-63 lower-case letters, digits, '-' or '.'",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            crate::store::validate_key(prefix)
                .map_err(|_| bad("the key has an empty, '.' or '..' segment"))?;
        }
        Ok(Location::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_s3() {
        assert_eq!(
            Location::parse("out/dir").unwrap(),
            Location::Local("out/dir".into())
        );
        assert_eq!(
            Location::parse("s3://vod/lecture-42/").unwrap(),
            Location::S3 {
                bucket: "vod".into(),
                prefix: "lecture-42".into()
            }
        );
        assert_eq!(
            Location::parse("s3://uploads/a/b.mp4").unwrap(),
            Location::S3 {
                bucket: "uploads".into(),
                prefix: "a/b.mp4".into()
            }
        );
        assert_eq!(Location::parse("s3://vod").unwrap().to_string(), "s3://vod");
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "s3://",
            "s3://Vod/x",
            "s3://ab/x",
            "s3://vod/../x",
            "s3://vod/a//b",
            "http://x/y",
            "",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad:?}: {e}");
        }
    }
}
