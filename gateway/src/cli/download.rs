//! `trove download SRC DST`: a download job as AIS's CLI makes it (`ais download`), followed to its end with
//! `--wait` (a progress bar on a terminal).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::{human_bytes, Api, Conn};

#[derive(clap::Args)]
pub struct DownloadArgs {
    /// A link (`https://host/file.tar`), a brace template of links (`'https://host/shard-{0000..0999}.tar'`),
    /// with --object-list the links' common prefix, or a cloud bucket prefix (`s3://bucket/train/`, into the
    /// same bucket's cache).
    pub src: String,
    /// The bucket and, for one link, the object name (`ais://dst/name`), for a template the directory the
    /// files go into (`ais://dst/train/`).
    pub dst: String,
    #[arg(long)]
    pub desc: Option<String>,
    /// How long one file may take (Go duration: 30s, 10m, 1h).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Concurrent downloads per node.
    #[arg(long)]
    pub max_conns: Option<u64>,
    /// Bytes per hour for the whole cluster (1GiB, 500MiB, ...).
    #[arg(long)]
    pub limit_bph: Option<String>,
    /// For a cloud bucket prefix: refetch changed copies, drop copies of objects gone from the bucket.
    #[arg(long)]
    pub sync: bool,
    /// A JSON array of names, each fetched from SRC/NAME.
    #[arg(long, value_name = "FILE")]
    pub object_list: Option<std::path::PathBuf>,
    /// Follow the job until it ends (progress bar on a terminal); fails when a file failed.
    #[arg(long)]
    pub wait: bool,
}

/// `provider://bucket[/path]` as `(provider, bucket, path)`.
fn split_uri(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((scheme, bucket, path))
}

/// A cloud URI's provider as the native API names it.
fn cloud_provider(scheme: &str) -> Option<&'static str> {
    match scheme {
        "s3" | "aws" => Some("aws"),
        "gs" | "gcp" => Some("gcp"),
        "az" | "azure" => Some("azure"),
        _ => None,
    }
}

/// The request body AIS's CLI sends for these arguments.
pub fn body(a: &DownloadArgs) -> anyhow::Result<Value> {
    let (dst_scheme, bucket, path) =
        split_uri(&a.dst).with_context(|| format!("the destination {:?} is not PROVIDER://BUCKET[/PATH]", a.dst))?;
    let provider = match dst_scheme {
        "ais" => "ais",
        other => cloud_provider(other).with_context(|| format!("unknown provider {other:?}"))?,
    };
    let mut body = json!({"bucket": {"name": bucket, "provider": provider}});
    let mut link = a.src.clone();
    if let Some((scheme, src_bucket, src_path)) = split_uri(&a.src) {
        if let Some(src_provider) = cloud_provider(scheme) {
            if src_provider == provider && src_bucket == bucket {
                body["type"] = json!("backend");
                body["prefix"] = json!(src_path);
                body["synchronize"] = json!(a.sync);
                return finish(body, a);
            }
            link = match src_provider {
                "gcp" => format!("https://storage.googleapis.com/{src_bucket}/{src_path}"),
                "aws" => format!("http://s3.amazonaws.com/{src_bucket}/{src_path}"),
                _ => bail!("an Azure container downloads only into itself: trove download az://C/PREFIX az://C"),
            };
        } else if !matches!(scheme, "http" | "https") {
            bail!("invalid scheme {scheme:?}: http(s), s3, gs or az");
        }
    } else {
        link = format!("https://{link}");
    }
    if a.sync {
        bail!("--sync is for a cloud bucket prefix downloaded into the same bucket");
    }
    if let Some(list) = &a.object_list {
        let text = std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
        let names: Vec<String> = serde_json::from_str(&text).context("the object list is a JSON array of names")?;
        let base = link.trim_end_matches('/');
        body["type"] = json!("multi");
        body["objects"] = json!(names.iter().map(|n| format!("{base}/{n}")).collect::<Vec<_>>());
    } else if link.contains('{') && link.contains('}') {
        body["type"] = json!("range");
        body["template"] = json!(link);
        body["subdir"] = json!(path);
    } else {
        body["type"] = json!("single");
        body["link"] = json!(link);
        if !path.is_empty() && !path.ends_with('/') {
            body["object_name"] = json!(path);
        } else if !path.is_empty() {
            let last = link.split(['?', '#']).next().unwrap_or_default().rsplit('/').next().unwrap_or_default();
            body["object_name"] = json!(format!("{path}{last}"));
        }
    }
    finish(body, a)
}

fn finish(mut body: Value, a: &DownloadArgs) -> anyhow::Result<Value> {
    if let Some(d) = &a.desc {
        body["description"] = json!(d);
    }
    if let Some(t) = &a.timeout {
        body["timeout"] = json!(t);
    }
    let bph = a.limit_bph.as_deref().map(crate::bench::parse_size).transpose()?.unwrap_or(0);
    body["limits"] = json!({"connections": a.max_conns.unwrap_or(0), "bytes_per_hour": bph});
    Ok(body)
}

pub async fn download(conn: &Conn, a: &DownloadArgs) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let (_, answer) = api.call(http::Method::POST, trove_ais::path::DOWNLOAD, Some(body(a)?)).await?;
    let answer: Value = serde_json::from_slice(&answer).context("the node's answer is not JSON")?;
    let id = answer["id"].as_str().context("the node answered no job id")?.to_owned();
    println!("{id}");
    if a.wait {
        follow(&api, &id).await?;
    }
    Ok(())
}

async fn status(api: &Api, id: &str, only_active: bool) -> anyhow::Result<Value> {
    let q = json!({"id": id, "only_active_tasks": only_active});
    let (_, body) = api.call(http::Method::GET, trove_ais::path::DOWNLOAD, Some(q)).await?;
    Ok(serde_json::from_slice(&body)?)
}

fn progress(s: &Value, started: Instant) -> String {
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    let (done, errors, skipped, total) = (n("finished_cnt"), n("error_cnt"), n("skipped_cnt"), n("total"));
    let in_flight: u64 = s["current_tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["downloaded"].as_str()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let counts = format!(
        "{}/{} files, {} skipped, {} failed, {} in flight, {:.0?}",
        done + errors,
        if total > 0 { total.to_string() } else { "?".into() },
        skipped,
        errors,
        human_bytes(in_flight),
        started.elapsed()
    );
    if total <= 0 {
        return counts;
    }
    const WIDTH: i64 = 30;
    let filled = ((done + errors) * WIDTH / total).clamp(0, WIDTH) as usize;
    format!("[{}{}] {counts}", "#".repeat(filled), ".".repeat(WIDTH as usize - filled))
}

/// Polls the job until it ends; prints what AIS's CLI prints at the end, and the failed files.
async fn follow(api: &Api, id: &str) -> anyhow::Result<()> {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_print = Instant::now() - Duration::from_secs(60);
    loop {
        let s = status(api, id, true).await?;
        let done = s["finished_time"].as_str().is_some_and(|t| !t.starts_with("0001-"));
        let line = progress(&s, started);
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if done || last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!("{line}");
            last_print = Instant::now();
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if tty {
        eprintln!();
    }
    let s = status(api, id, false).await?;
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    let errors = s["download_errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        eprintln!("{}: {}", e["name"].as_str().unwrap_or("?"), e["error"].as_str().unwrap_or("?"));
    }
    eprintln!(
        "Done: {} files downloaded, skipped: {}, errors: {}",
        n("finished_cnt") - n("skipped_cnt"),
        n("skipped_cnt"),
        n("error_cnt")
    );
    if s["aborted"].as_bool().unwrap_or(false) {
        bail!("download {id} was stopped");
    }
    if n("error_cnt") > 0 {
        bail!("download {id}: {} files failed", n("error_cnt"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: DownloadArgs,
    }

    fn body_of(args: &[&str]) -> Value {
        body(&T::parse_from([&["t"], args].concat()).a).unwrap()
    }

    #[test]
    fn sources_become_the_request_types() {
        let b = body_of(&["https://h/a/x.tar?sig=1", "ais://dst/data/y.tar"]);
        assert_eq!((b["type"].as_str(), b["object_name"].as_str()), (Some("single"), Some("data/y.tar")));
        let b = body_of(&["h/a/x.tar", "ais://dst/dir/"]);
        assert_eq!((b["link"].as_str(), b["object_name"].as_str()), (Some("https://h/a/x.tar"), Some("dir/x.tar")));
        let b = body_of(&["https://h/s-{0..9}.tar", "ais://dst/train", "--max-conns", "2", "--limit-bph", "1MiB"]);
        assert_eq!((b["type"].as_str(), b["subdir"].as_str()), (Some("range"), Some("train")));
        assert_eq!(b["limits"], json!({"connections": 2, "bytes_per_hour": 1 << 20}));
        let b = body_of(&["s3://origin/train/", "s3://origin", "--sync"]);
        assert_eq!((b["type"].as_str(), b["prefix"].as_str()), (Some("backend"), Some("train/")));
        assert_eq!(b["bucket"], json!({"name": "origin", "provider": "aws"}));
        let b = body_of(&["gs://pub/a.tar", "ais://dst"]);
        assert_eq!(b["link"].as_str(), Some("https://storage.googleapis.com/pub/a.tar"));
        assert!(body(&T::parse_from(["t", "ftp://h/x", "ais://d"]).a).is_err());
        assert!(body(&T::parse_from(["t", "https://h/x", "ais://d", "--sync"]).a).is_err());
    }
}
