//! `trove`: the Trove node (`trove serve`) and its command-line tools (`trove bench`).

mod acl;
mod bench;
mod capacity;
mod cli;
mod cluster;
mod conn;
mod data;
mod direct;
mod door;
mod jobs;
mod metrics;
mod native;
mod providers;
mod rate_limit;
mod request;
mod s3;
mod server;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trove_config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "trove", version, about = "S3-compatible caching gateway for AI datasets")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Trove node.
    Serve {
        /// TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<SocketAddr>,
        /// A data directory (one per disk); repeatable [default: ./trove-data].
        #[arg(long = "mountpath", value_name = "DIR")]
        mountpaths: Vec<PathBuf>,
        /// Stable node id (generated once when unset).
        #[arg(long)]
        node_id: Option<String>,
        /// Join the cluster behind this node (any node's URL, e.g. http://10.0.0.1:8080).
        #[arg(long, value_name = "URL")]
        join: Option<String>,
        /// The cluster secret (else TROVE_CLUSTER_SECRET; the first node generates and prints one).
        #[arg(long, value_name = "SECRET")]
        cluster_secret: Option<String>,
        /// The URL other nodes and clients reach this node at [default: http://LISTEN].
        #[arg(long, value_name = "URL")]
        advertise: Option<String>,
    },
    /// Load-test an S3 endpoint: PUT then GET N objects of a given size over C connections.
    Bench(bench::Args),
    /// Fetch objects of a cloud bucket into the cache (an AIS prefetch job).
    Prefetch {
        #[command(flatten)]
        conn: cli::Conn,
        /// The bucket, e.g. s3://imagenet.
        uri: String,
        #[command(flatten)]
        sel: cli::Selection,
        /// Check cached copies against the backend and refetch changed ones.
        #[arg(long)]
        latest: bool,
        /// Continue when an object fails.
        #[arg(long)]
        continue_on_error: bool,
        /// Parallel fetches (default: 4).
        #[arg(long)]
        num_workers: Option<i64>,
        /// Objects of at least this many bytes are fetched with parallel ranged reads.
        #[arg(long)]
        blob_threshold: Option<u64>,
        /// Follow the job until it ends (progress bar on a terminal).
        #[arg(long)]
        wait: bool,
    },
    /// Drop cached copies of a cloud bucket's objects (the cloud keeps them).
    Evict {
        #[command(flatten)]
        conn: cli::Conn,
        uri: String,
        #[command(flatten)]
        sel: cli::Selection,
        /// Every cached copy of the bucket at once; the bucket stays attached with --keep-md.
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        keep_md: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Prefetch and evict jobs: list, show, wait for, stop.
    Job {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        cmd: cli::JobCmd,
    },
    /// List a bucket's objects and which are cached.
    Ls {
        #[command(flatten)]
        conn: cli::Conn,
        uri: String,
        #[arg(long)]
        prefix: Option<String>,
        /// Only cached objects.
        #[arg(long)]
        cached: bool,
    },
    /// Print an object, or one file inside a shard (--archpath), to stdout or a file.
    Get {
        #[command(flatten)]
        conn: cli::Conn,
        /// The object, e.g. ais://train/shards/0001.tar or s3://origin/a/b.
        uri: String,
        /// A file inside the archive object (TAR, TGZ, ZIP, TAR.LZ4).
        #[arg(long)]
        archpath: Option<String>,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make one shard of many objects (the archive job): `trove archive ais://src ais://dst/shard-0001.tar
    /// --template 'img/{0000..0999}.jpg'`.
    Archive {
        #[command(flatten)]
        conn: cli::Conn,
        /// The bucket the objects are in.
        src: String,
        /// The shard to write: PROVIDER://BUCKET/NAME with an archive extension.
        shard: String,
        #[command(flatten)]
        sel: cli::Selection,
        /// Add to the shard if it exists.
        #[arg(long)]
        append: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Fetch HTTP(S) links into a bucket (an AIS download job): one link, a brace template of links, a list,
    /// or a cloud bucket prefix into its cache.
    Download {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(flatten)]
        args: cli::DownloadArgs,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The cluster: its nodes with state, capacity and use; maintenance, decommission and removal of a node.
    Cluster {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        cmd: cli::ClusterCmd,
    },
    /// Buckets of a running node: list, attach and detach cloud buckets, properties.
    Bucket {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        cmd: cli::BucketCmd,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, listen, mountpaths, node_id, join, cluster_secret, advertise } => {
            let overrides = Overrides { listen, mountpaths, node_id, join, cluster_secret, advertise };
            match Config::load(config.as_deref(), &overrides) {
                Ok(cfg) => {
                    let traces = init_logging(&cfg.telemetry);
                    let served = server::serve(cfg);
                    if let Some(p) = traces {
                        let _ = p.shutdown();
                    }
                    served
                }
                Err(e) => Err(anyhow::Error::new(e)),
            }
        }
        Command::Bench(args) => runtime().and_then(|rt| rt.block_on(bench::run(args))),
        Command::Prefetch { conn, uri, sel, latest, continue_on_error, num_workers, blob_threshold, wait } => {
            let opts = serde_json::json!({
                "latest-ver": latest,
                "coer": continue_on_error,
                "num-workers": num_workers.unwrap_or(0),
                "blob-threshold": blob_threshold.unwrap_or(0),
            });
            runtime().and_then(|rt| rt.block_on(cli::start_job(&conn, false, &uri, &sel, opts, wait)))
        }
        Command::Evict { conn, uri, sel, all, keep_md, wait } => runtime().and_then(|rt| {
            rt.block_on(async {
                if all {
                    cli::evict_bucket(&conn, &uri, keep_md).await
                } else {
                    cli::start_job(&conn, true, &uri, &sel, serde_json::json!({}), wait).await
                }
            })
        }),
        Command::Job { conn, cmd } => runtime().and_then(|rt| rt.block_on(cli::job(&conn, cmd))),
        Command::Ls { conn, uri, prefix, cached } => {
            runtime().and_then(|rt| rt.block_on(cli::ls(&conn, &uri, prefix, cached)))
        }
        Command::Get { conn, uri, archpath, output } => {
            runtime().and_then(|rt| rt.block_on(cli::get(&conn, &uri, archpath, output)))
        }
        Command::Archive { conn, src, shard, sel, append, wait } => {
            runtime().and_then(|rt| rt.block_on(cli::archive(&conn, &src, &shard, &sel, append, wait)))
        }
        Command::Download { conn, args } => runtime().and_then(|rt| rt.block_on(cli::download(&conn, &args))),
        Command::Completions { shell } => {
            completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Bucket { conn, cmd } => runtime().and_then(|rt| rt.block_on(cli::bucket(&conn, cmd))),
        Command::Cluster { conn, cmd } => runtime().and_then(|rt| rt.block_on(cli::cluster(&conn, cmd))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trove: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "trove", out);
}

/// The error and its causes on one line, as an operator reads it in a terminal or a log.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Logs go to stdout; stderr is kept for the one-line start-up error. s3s logs every client error at ERROR
/// level, so it is off unless `RUST_LOG` asks for it. With an OTLP endpoint, request and backend spans are
/// exported as traces too (the returned provider flushes them at exit).
fn init_logging(cfg: &trove_config::TelemetryConfig) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off,openraft=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stdout).with_filter(filter);
    let endpoint = cfg
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|e| !e.is_empty());
    let provider = endpoint.and_then(|e| match telemetry::provider(&e) {
        Ok(p) => Some(p),
        Err(err) => {
            eprintln!("trove: warning: no trace export to {e}: {err}");
            None
        }
    });
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("trove", tracing::Level::DEBUG)
            .with_target("trove_backends", tracing::Level::DEBUG)
            .with_target("trove_cache", tracing::Level::DEBUG);
        tracing_opentelemetry::layer().with_tracer(p.tracer("trove")).with_filter(targets)
    });
    tracing_subscriber::registry().with(fmt).with(otel).init();
    provider
}

mod telemetry {
    use opentelemetry_otlp::WithExportConfig;

    /// A tracer provider exporting spans in batches over OTLP/HTTP (protobuf) from its own thread.
    pub fn provider(endpoint: &str) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name("trove").build();
        Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build())
    }
}
