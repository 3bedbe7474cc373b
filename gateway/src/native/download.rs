//! `/v1/download`: AIS's downloader. `POST` starts a job (on every node, under one `dnl-` id); `GET` with a
//! JSON body reports one job (`{"id"}`) or lists them (`{"regex"}`); `DELETE /abort` stops one and `DELETE
//! /remove` forgets a finished one. Answers are the nodes' parts added up, as AIS's proxy adds them.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::{json, Call};
use crate::data::peers::{downloads_everywhere, jobs_everywhere, DownloadQuery, JobFilter, JobStart};
use crate::jobs::download::{self, request, Status};
use crate::state::SharedState;

type Reply = Result<Response<s3s::Body>, (StatusCode, String)>;

fn bad(m: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, m.into())
}

fn answer(v: &impl serde::Serialize) -> Reply {
    let body = serde_json::to_vec(v).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(json(StatusCode::OK, Bytes::from(body)))
}

pub async fn handle(state: &SharedState, call: &Call, path: &str) -> Reply {
    let action = path.strip_prefix(trove_ais::path::DOWNLOAD).unwrap_or_default().trim_matches('/');
    match (&call.method, action) {
        (&http::Method::POST, "") => start(state, call).await,
        (&http::Method::GET, "") => status_or_list(state, call).await,
        (&http::Method::DELETE, "abort") => abort(state, call).await,
        (&http::Method::DELETE, "remove") => remove(state, call).await,
        (&http::Method::DELETE, "") => Err(bad("a DELETE of /v1/download names its action: abort or remove")),
        (_, "" | "abort" | "remove") => {
            Err((StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {path}", call.method)))
        }
        (_, other) => Err(bad(format!("invalid download action {other:?}"))),
    }
}

async fn start(state: &SharedState, call: &Call) -> Reply {
    let body = &call.raw;
    if !body.is_object() {
        return Err(bad("the request body must be a JSON object with a 'type'"));
    }
    let (name, provider) = request::destination(body).map_err(bad)?;
    let params = vec![(trove_ais::query::PROVIDER.to_owned(), provider.clone())];
    // As AIS, a missing AIS-local destination is made.
    let (bucket, dst) = match super::bucket(state, &name, &params).await {
        Ok(found) => found,
        Err((StatusCode::NOT_FOUND, _)) if provider == "ais" => {
            super::buckets::create_ais(state, &name, &json!({})).await?;
            super::bucket(state, &name, &params).await?
        }
        Err(e) => return Err(e),
    };
    let spec = request::parse(body, &bucket, dst.bck.is_remote(), &state.download_policy).map_err(bad)?;
    let job = JobStart {
        kind: download::DOWNLOAD.to_owned(),
        id: download::new_id(),
        bucket,
        msg: Default::default(),
        copy: None,
        download: Some(spec),
    };
    let id = crate::data::peers::start_everywhere(state, job).await.map_err(|e| bad(e.to_string()))?;
    answer(&json!({ "id": id }))
}

/// AIS's `AdminBody`: `{"id", "regex", "only_active_tasks"}` (a body is required, even on GET and DELETE).
struct Admin {
    id: String,
    regex: String,
    only_active: bool,
}

fn admin(call: &Call, need_id: bool) -> Result<Admin, (StatusCode, String)> {
    if !call.raw.is_object() {
        return Err(bad("the request body must be a JSON object: {\"id\": ...} or {\"regex\": ...}"));
    }
    let text = |k: &str| call.raw.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let a = Admin {
        id: text("id"),
        regex: text("regex"),
        only_active: call.raw.get("only_active_tasks").and_then(Value::as_bool).unwrap_or(false),
    };
    if !a.id.is_empty() && !a.regex.is_empty() {
        return Err(bad(format!(
            "regex {:?} and job ID {:?} cannot be defined together (choose one or the other)",
            a.regex, a.id
        )));
    }
    if need_id && a.id.is_empty() {
        return Err(bad("UUID not specified"));
    }
    Ok(a)
}

/// The job's parts on every node, or 404.
async fn parts(state: &SharedState, id: &str, tasks: bool) -> Result<Vec<Status>, (StatusCode, String)> {
    let q = DownloadQuery { id: id.to_owned(), tasks, ..Default::default() };
    let parts = downloads_everywhere(state, &q).await;
    if parts.is_empty() {
        return Err((StatusCode::NOT_FOUND, format!("download job {id} does not exist")));
    }
    Ok(parts)
}

async fn status_or_list(state: &SharedState, call: &Call) -> Reply {
    let a = admin(call, false)?;
    if !a.id.is_empty() {
        let mut status = Status::merge(parts(state, &a.id, !a.only_active).await?).unwrap_or_default();
        status.current_tasks.sort_by(|x, y| x.name.cmp(&y.name));
        return answer(&status);
    }
    let re = regex::Regex::new(&a.regex).map_err(|e| bad(format!("invalid regex {:?}: {e}", a.regex)))?;
    let q = DownloadQuery { only_active: a.only_active, ..Default::default() };
    let records: Vec<_> = Status::merge_records(downloads_everywhere(state, &q).await)
        .into_iter()
        .filter(|r| re.is_match(&r.description) && (!a.only_active || !r.finished()))
        .collect();
    answer(&records)
}

async fn abort(state: &SharedState, call: &Call) -> Reply {
    let a = admin(call, true)?;
    parts(state, &a.id, false).await?;
    let filter = JobFilter { id: a.id, kind: download::DOWNLOAD.to_owned() };
    jobs_everywhere(state, &filter, true).await;
    Ok(json(StatusCode::OK, Bytes::new()))
}

async fn remove(state: &SharedState, call: &Call) -> Reply {
    let a = admin(call, true)?;
    if parts(state, &a.id, false).await?.iter().any(|p| !p.job.finished()) {
        return Err(bad(format!("job {:?} is still running", a.id)));
    }
    let q = DownloadQuery { id: a.id, remove: true, ..Default::default() };
    downloads_everywhere(state, &q).await;
    Ok(json(StatusCode::OK, Bytes::new()))
}
