//! Object storage end to end, against a real S3-speaking server (s3s-fs,
//! strict about signatures and checksums) on 127.0.0.1.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::s3::S3Server;
use common::*;
use strata_packager::{S3Store, Store};

/// Download every object a published output names, into `dir`.
fn download(store: &S3Store, dir: &Path) {
    let get = |key: &str| {
        let data = store.get(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    get("master.m3u8");
    let m = master(dir);
    let playlists = m
        .variants
        .iter()
        .map(|v| v.uri.clone())
        .chain(m.alternatives.iter().filter_map(|a| a.uri.clone()));
    for pl in playlists {
        get(&pl);
        let base = pl.rsplit_once('/').map_or("", |(b, _)| b).to_string();
        let media = media(&dir.join(&pl));
        for uri in media
            .segments
            .iter()
            .flat_map(|s| s.map.iter().map(|m| m.uri.clone()).chain([s.uri.clone()]))
        {
            get(&format!("{base}/{uri}"));
        }
    }
}

fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn s3_in_s3_out_plays_with_headers_and_streams_uploads() {
    let server = S3Server::shared();
    let uploads = server.bucket("uploads");
    let vod = server.bucket("vod");
    server.upload(&uploads, "in/lecture.mp4", &fixture("720p2997-av"));

    let input = format!("s3://{uploads}/in/lecture.mp4");
    let output = format!("s3://{vod}/lecture-42/");
    let run = strata_env(
        &[
            "transcode",
            &input,
            "-o",
            &output,
            "--json",
            "--sse",
            "AES256",
        ],
        &server.env(),
    );
    assert_ok(&run);

    // Segments were uploaded while the encode was still running.
    let ev = events(&run);
    let encoded = ev
        .iter()
        .position(|e| e["event"] == "encoded")
        .expect("encoded event");
    let first_segment_upload = ev
        .iter()
        .position(|e| e["event"] == "uploaded" && e["key"].as_str().unwrap().contains("seg_"))
        .expect("uploaded events");
    assert!(
        first_segment_upload < encoded,
        "no segment was uploaded before the encode finished"
    );
    // The master is the last object to be published.
    let last_upload = ev
        .iter()
        .rev()
        .find(|e| e["event"] == "uploaded" && e["key"] != "report.json")
        .unwrap();
    assert_eq!(last_upload["key"], "master.m3u8");

    let store = server.store(&vod, "lecture-42");
    for (key, ct, immutable) in [
        ("master.m3u8", "application/vnd.apple.mpegurl", false),
        (
            "video/720p/index.m3u8",
            "application/vnd.apple.mpegurl",
            false,
        ),
        ("video/720p/init.mp4", "video/mp4", true),
        ("video/720p/seg_00001.m4s", "video/iso.segment", true),
        ("report.json", "application/json", false),
    ] {
        let (content_type, cache) = store.headers(key).unwrap();
        assert_eq!(content_type.as_deref(), Some(ct), "{key}");
        let cache = cache.unwrap_or_default();
        assert_eq!(cache.contains("immutable"), immutable, "{key}: {cache}");
        assert!(cache.contains("max-age="), "{key}: {cache}");
    }

    let local = tempfile::tempdir().unwrap();
    download(&store, local.path());
    assert_plays(local.path());
}

#[test]
fn failure_mid_job_leaves_no_master_and_the_rerun_succeeds() {
    let mut server = S3Server::start();
    let vod = server.bucket("vod");
    let input = fixture("1080p30-av");
    let output = format!("s3://{vod}/job/");
    // Stop the server as soon as the first object has been stored.
    let child = spawn_until(
        &[
            "transcode",
            input.to_str().unwrap(),
            "-o",
            &output,
            "--json",
        ],
        &server.env(),
        "\"event\":\"uploaded\"",
    );
    server.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("attempts"),
        "the failure should say it was retried: {stderr}"
    );

    server.resume();
    let store = server.store(&vod, "job");
    assert_eq!(
        store.size("master.m3u8").unwrap(),
        None,
        "a failed job published a master"
    );

    // The same job again overwrites the same keys and publishes.
    let rerun = strata_env(
        &["transcode", input.to_str().unwrap(), "-o", &output],
        &server.env(),
    );
    assert_ok(&rerun);
    assert!(store.size("master.m3u8").unwrap().is_some());
}

#[test]
fn transient_connection_errors_are_retried() {
    let mut server = S3Server::start();
    let bucket = server.bucket("retry");
    let store = server.store(&bucket, "p");
    server.stop();
    // The server comes back while the put is retrying.
    let restart = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        server.resume();
        server
    });
    store
        .put("a/seg_00001.m4s", b"segment bytes", "video/iso.segment")
        .unwrap();
    let _server = restart.join().unwrap();
    assert!(store.counters.retries.load(Ordering::Relaxed) > 0);
    assert_eq!(store.get("a/seg_00001.m4s").unwrap(), b"segment bytes");
}

#[test]
fn large_objects_use_multipart_upload() {
    let server = S3Server::shared();
    let bucket = server.bucket("multipart");
    let mut settings = server.settings(&bucket, "big");
    settings.part_size = strata_packager::s3::MIN_PART_SIZE;
    let store = S3Store::open(settings).unwrap();
    let data: Vec<u8> = (0..11 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    store
        .put("video/1080p/seg_00001.m4s", &data, "video/iso.segment")
        .unwrap();
    assert_eq!(store.counters.multipart_uploads.load(Ordering::Relaxed), 1);
    assert_eq!(store.counters.aborted_uploads.load(Ordering::Relaxed), 0);
    assert_eq!(
        store.size("video/1080p/seg_00001.m4s").unwrap(),
        Some(data.len() as u64)
    );
    assert!(store.get("video/1080p/seg_00001.m4s").unwrap() == data);
    let (ct, cache) = store.headers("video/1080p/seg_00001.m4s").unwrap();
    assert_eq!(ct.as_deref(), Some("video/iso.segment"));
    assert!(cache.unwrap_or_default().contains("immutable"));
}

#[test]
fn bad_uris_and_missing_buckets() {
    let server = S3Server::shared();
    let env = server.env();
    let input = fixture("audio-only");
    let input = input.to_str().unwrap();

    let run = strata_env(&["transcode", input, "-o", "s3://Bad_Bucket/x"], &env);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("s3://Bad_Bucket/x"));

    let run = strata_env(&["transcode", input, "-o", "s3://vod/../x"], &env);
    assert_eq!(run.status.code(), Some(2));

    let run = strata_env(
        &["transcode", input, "-o", "s3://no-such-bucket-here/x"],
        &env,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no-such-bucket-here") && stderr.contains("does not exist"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = strata_env(
        &[
            "transcode",
            "s3://no-such-bucket-here/a.mp4",
            "-o",
            out.to_str().unwrap(),
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("s3://no-such-bucket-here/a.mp4"),
        "{stderr}"
    );

    let bucket = server.bucket("inputs");
    let missing = format!("s3://{bucket}/missing.mp4");
    let run = strata_env(&["transcode", &missing, "-o", out.to_str().unwrap()], &env);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&missing) && stderr.contains("no such object"),
        "{stderr}"
    );
    assert!(!out.join("master.m3u8").exists());
}
