//! The `trove` client commands that talk to a node's native API (`--endpoint` / `TROVE_ENDPOINT`, token from
//! `TROVE_ADMIN_TOKEN`): `trove bucket ls|attach|detach|props`.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use trove_namespace::{Bck, Provider};

#[derive(Args)]
pub struct Conn {
    /// The node's address.
    #[arg(long, env = "TROVE_ENDPOINT", default_value = "http://127.0.0.1:8080", global = true)]
    pub endpoint: String,
    /// Native-API bearer token.
    #[arg(long, env = "TROVE_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum BucketCmd {
    /// List the buckets of the namespace: S3 name and what it stands for.
    Ls,
    /// Attach a cloud bucket (s3://, gs://, az://) under an S3 name.
    Attach {
        /// The cloud bucket, e.g. s3://origin.
        uri: String,
        /// The S3 name clients use [default: the cloud bucket's name].
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// Bucket properties with AIS names, as JSON (`{"versioning":{"validate_warm_get":true}}`).
        #[arg(long, value_name = "JSON")]
        props: Option<String>,
    },
    /// Detach a cloud bucket: it leaves the namespace and its cached copies are dropped; cloud data stays.
    Detach { name: String },
    /// Show a bucket's properties, or set some (`key=value` with AIS names, e.g. versioning.validate_warm_get=true).
    Props { name: String, set: Vec<String> },
}

struct Api {
    endpoint: String,
    token: Option<String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    fn new(c: &Conn) -> Api {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Api { endpoint: c.endpoint.trim_end_matches('/').to_owned(), token: c.token.clone(), client }
    }

    /// Sends one call; returns the response headers and body, or the node's error message.
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(http::HeaderMap, Bytes)> {
        let mut req = http::Request::builder().method(method).uri(format!("{}{path}", self.endpoint));
        if let Some(t) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req = req.header(http::header::CONTENT_TYPE, "application/json");
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let resp = self
            .client
            .request(req.body(Full::new(body))?)
            .await
            .with_context(|| format!("cannot reach {}", self.endpoint))?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        if !parts.status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            if parts.status == http::StatusCode::UNAUTHORIZED {
                bail!("{msg} (set TROVE_ADMIN_TOKEN or --token)");
            }
            bail!("{msg}");
        }
        Ok((parts.headers, bytes))
    }
}

fn uri_of(v: &serde_json::Value) -> String {
    let b = v.get("backend_bck").unwrap_or(v);
    let provider =
        b.get("provider").and_then(|p| p.as_str()).and_then(|p| p.parse::<Provider>().ok()).unwrap_or(Provider::Ais);
    let name = b.get("name").and_then(|n| n.as_str()).unwrap_or_default();
    format!("{}://{name}", provider.scheme())
}

pub async fn bucket(conn: &Conn, cmd: BucketCmd) -> anyhow::Result<()> {
    let api = Api::new(conn);
    match cmd {
        BucketCmd::Ls => {
            let (_, body) = api.call(http::Method::GET, "/v1/buckets/", Some(json!({"action": "list"}))).await?;
            let list: Vec<serde_json::Value> = serde_json::from_slice(&body).context("unexpected answer")?;
            for b in list {
                println!("{}\t{}", b.get("name").and_then(|n| n.as_str()).unwrap_or_default(), uri_of(&b));
            }
        }
        BucketCmd::Attach { uri, name, props } => {
            let bck: Bck = uri.parse()?;
            if !bck.provider.is_remote() {
                bail!("{uri} is not a cloud bucket: use s3://, gs:// or az://");
            }
            let mut value = match props {
                Some(p) => serde_json::from_str(&p).context("--props is not valid JSON")?,
                None => json!({}),
            };
            let path = match name.filter(|n| *n != bck.name) {
                None => format!("/v1/buckets/{}?provider={}", bck.name, bck.provider.as_str()),
                Some(n) => {
                    value["backend_bck"] = json!({"name": bck.name, "provider": bck.provider.as_str()});
                    format!("/v1/buckets/{n}?provider=ais")
                }
            };
            api.call(http::Method::POST, &path, Some(json!({"action": "create-bck", "value": value}))).await?;
            println!("attached {uri}");
        }
        BucketCmd::Detach { name } => {
            api.call(http::Method::DELETE, &format!("/v1/buckets/{name}"), Some(json!({"action": "destroy-bck"})))
                .await?;
            println!("detached {name}");
        }
        BucketCmd::Props { name, set } => {
            if !set.is_empty() {
                let mut value = json!({});
                for kv in &set {
                    let (k, v) = kv.split_once('=').with_context(|| format!("{kv}: expected key=value"))?;
                    let parsed: serde_json::Value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
                    let mut slot = &mut value;
                    for part in k.split('.') {
                        slot = &mut slot[part];
                    }
                    *slot = parsed;
                }
                api.call(
                    http::Method::PATCH,
                    &format!("/v1/buckets/{name}"),
                    Some(json!({"action": "set-bprops", "value": value})),
                )
                .await?;
            }
            let (headers, _) = api.call(http::Method::HEAD, &format!("/v1/buckets/{name}"), None).await?;
            let props = headers.get("ais-bucket-props").and_then(|h| h.to_str().ok()).unwrap_or("{}");
            let v: serde_json::Value = serde_json::from_str(props).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}
