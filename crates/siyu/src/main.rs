//! `siyu`: the server and its command line. This is the only crate that uses `anyhow`;
//! the layers below have typed errors.

mod bench;
mod bench_acquisition;
mod bench_audience;
mod bench_broadcast;
mod bench_jobs;
mod bench_links;
mod bench_wecom;
mod config;
mod demo;
mod demo_acquisition;
mod demo_content;
mod demo_data;
mod jobs_cli;
mod key_file;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use siyu_domain::audit::Actor;
use siyu_domain::import::ImportKind;
use siyu_domain::secret::SecretKey;
use siyu_domain::tenancy::NewTenant;
use siyu_runtime::{Node, NodeConfig, Role};
use siyu_store::{Store, StoreOptions};

use crate::config::{DEFAULT_DATABASE_URL, FileConfig};

/// mimalloc: ingestion allocates and frees many small maps and strings per event, from
/// several threads; glibc's allocator spent a fifth of the CPU of `bench ingest` on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// siyu (私域): private-domain customer operations — one customer pool, tags and
/// segments, staff and personas, mass sends and journeys, referral and loyalty.
#[derive(Parser)]
#[command(name = "siyu", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// The database: sqlite://PATH (created if missing) or postgres://USER:PASS@HOST/DB
    /// [default: sqlite://siyu.db; for `demo`, sqlite://siyu-demo.db]
    #[arg(long, env = "SIYU_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// A TOML config file (see README: Configuration)
    #[arg(long, env = "SIYU_CONFIG", global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and the background work (migrates the database first)
    Serve {
        /// Address to listen on [env: SIYU_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, env = "SIYU_LISTEN")]
        listen: Option<String>,
        /// What this node does: `api` (the API and console; background work is left to
        /// worker nodes), `worker` (background work: ingest, audiences, jobs; HTTP
        /// serves health and metrics only) or `all`
        #[arg(long, env = "SIYU_ROLE", default_value = "all", value_parser = parse_role)]
        role: Role,
    },
    /// Apply the database migrations and exit
    Migrate,
    /// Manage tenants
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage sources of events (apps, sites, servers) and their write keys
    #[command(subcommand)]
    Source(SourceCommand),
    /// Import customers or orders from a CSV file (idempotent: importing a file again
    /// changes nothing)
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export customers to CSV
    #[command(subcommand)]
    Export(ExportCommand),
    /// Tracked events the ingest applier set aside (they failed on their own, again and
    /// again): list them, and replay them once the cause is fixed
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Background jobs of every tenant and the system: list and show them, retry dead
    /// or cancelled ones, cancel waiting ones, enqueue one by hand
    #[command(subcommand)]
    Jobs(jobs_cli::JobsCommand),
    /// Measure hot paths; each prints its figures, the last line one JSON object
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the API's OpenAPI document (what /api/openapi.json serves)
    Openapi,
    /// Run with a demo tenant, units and staff (created on first run, reused after)
    Demo {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long, env = "SIYU_LISTEN")]
        listen: Option<String>,
        /// How many customers a new demo gets
        #[arg(long, default_value_t = 50_000)]
        customers: usize,
        /// The seed of the demo data: the same seed makes the same tenant (relative to
        /// the day it is made)
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

#[derive(Args)]
struct ImportArgs {
    /// The CSV file; the first row names the columns
    file: PathBuf,
    /// The tenant's name
    #[arg(long)]
    tenant: String,
    /// Column mapping HEADER=FIELD,… (e.g. "手机=phone,卡号=identity:member_no,备注=ignore");
    /// unnamed headers keep their default meaning (see README: Import and export)
    #[arg(long)]
    map: Option<String>,
    /// Write the refused rows (line, reason) to this CSV file instead of stderr
    #[arg(long)]
    rejects: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Customers: identities, name, traits, consent:CHANNEL columns
    Customers(ImportArgs),
    /// Orders: order_id, the customer, channel, amount, ordered_at, one item per row
    Orders(ImportArgs),
}

#[derive(Subcommand)]
enum IngestCommand {
    /// List the events set aside, oldest first, with the error each failed with
    DeadLetters {
        /// At most this many
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Put events set aside back at the end of the ingest log, to be applied again (a
    /// running server picks them up within a second); all of them unless --seq is given
    Replay {
        /// The number of an event set aside (as `dead-letters` lists it); repeatable
        #[arg(long)]
        seq: Vec<i64>,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Customers (all, or those a search finds) with identities, order figures and
    /// traits, unmasked; audited
    Customers {
        #[arg(long)]
        tenant: String,
        /// A name, phone, email or identity value to search for
        #[arg(long)]
        q: Option<String>,
        /// Write to this file instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with its root unit and an admin; prints the tenant id last
    Create {
        /// The tenant's name, used as `--tenant NAME` by other commands
        name: String,
        #[arg(long)]
        admin_email: String,
        /// The admin's password (or set SIYU_ADMIN_PASSWORD, which stays out of `ps`)
        #[arg(long, env = "SIYU_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        /// The time zone the tenant's days start in (fixed once made): an IANA zone,
        /// such as Asia/Shanghai, Asia/Hong_Kong, Europe/Berlin, America/Los_Angeles, UTC
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
    },
    /// List tenants: id and name
    List,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer API token; prints the token last (it is shown once)
    Create {
        /// The tenant's name
        #[arg(long)]
        tenant: String,
        /// The role the token acts with (admin, operations, service, content, growth,
        /// analyst, or a custom role)
        #[arg(long)]
        role: String,
        /// A label for the token
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires [default: never]
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive /v1/batch of a real server with concurrent clients; prints events/s, batch
    /// latency, and profile-read latency while ingesting. Uses a temporary SQLite
    /// database unless --database-url is given.
    Ingest {
        /// How long to drive the server
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent clients (at most 64)
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Events per batch
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Distinct users the events are spread over
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Keep an audience index (a segment and a tag rule) following the data while
        /// ingesting, and report how soon it caught up
        #[arg(long)]
        audience: bool,
    },
    /// Enqueue no-op jobs in batches, run them from a full queue with a job runner of
    /// default settings, and time how soon an idle runner picks up a job. Uses a
    /// temporary SQLite database unless --database-url is given. The last line is one
    /// JSON object.
    Jobs {
        /// No-op jobs to enqueue (in batches of 1,000) and then run
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// Jobs enqueued one at a time into an idle runner, for the pickup latency
        #[arg(long, default_value_t = 500)]
        pickups: usize,
        /// How many of those a second
        #[arg(long, default_value_t = 50)]
        pickup_rate: u32,
    },
    /// Sync the stand-in's benchmark corp (100,000 external contacts across 50 members)
    /// into a fresh store as the wecom.sync job; prints the time, the calls made and
    /// contacts/s. Uses a temporary SQLite database unless --database-url is given. The
    /// last line is one JSON object.
    WecomSync {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 50)]
        members: usize,
    },
    /// A year of acquisition through a real server and the WeCom stand-in: 1,000
    /// channel codes, 1,000,000 encrypted add and delete callbacks (one in ten a
    /// deletion) and 200,000 orders; prints callbacks acknowledged/s and applied/s,
    /// the time of the all-codes report over the year, and a tracked link's redirect
    /// latency (p50, p99) at 1,000 requests a second. Uses a temporary SQLite database
    /// unless --database-url is given. The last line is one JSON object.
    Acquisition {
        #[arg(long, default_value_t = 1_000)]
        codes: usize,
        #[arg(long, default_value_t = 1_000_000)]
        callbacks: usize,
        #[arg(long, default_value_t = 200_000)]
        orders: usize,
        /// Concurrent HTTP clients sending callbacks (WeCom's own servers, in a flood).
        #[arg(long, default_value_t = 128)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        members: usize,
        /// Tracked-link redirects a second, after the callbacks and orders.
        #[arg(long, default_value_t = 1_000)]
        clicks_per_s: usize,
        /// For how many seconds the redirects go on.
        #[arg(long, default_value_t = 10)]
        click_seconds: u64,
    },
    /// One mass send to every customer of a fresh tenant (made outside the timed part,
    /// one in a hundred opted out) through the sandbox channel, on a server of its own;
    /// prints the planning time, messages recorded as sent a second and the time end to
    /// end, then counts what the sandbox received (doubled, missed). Uses a temporary
    /// SQLite database unless --database-url is given. The last line is one JSON object.
    Broadcast {
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        /// One customer in this many has opted out
        #[arg(long, default_value_t = 100)]
        opted_out_every: usize,
        /// Kill the server with SIGKILL once this fraction of the recipients is sent,
        /// start it again, and check that every recipient got exactly one message
        #[arg(long)]
        kill_at: Option<f64>,
    },
    /// Build the audience index of a synthetic tenant and time segment previews, a full
    /// RFM recompute, and the index's memory. The last line is one JSON object.
    Audience {
        #[arg(long, default_value_t = 1_000_000)]
        customers: u64,
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        #[arg(long, default_value_t = 3_000_000)]
        orders: u64,
        #[arg(long, default_value_t = 200)]
        tags: i64,
        /// How many previews to time
        #[arg(long, default_value_t = 200)]
        previews: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum SourceCommand {
    /// Create a source; prints its write key last (it is shown once)
    Create {
        /// The tenant's name
        #[arg(long)]
        tenant: String,
        /// A label for the source, such as "mini-program"
        #[arg(long)]
        name: String,
        /// app, website, mini_program, official_account, wecom, server or other
        #[arg(long, default_value = "other")]
        kind: String,
    },
    /// Replace a source's write key; prints the new key last
    RotateKey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match FileConfig::load(cli.global.config.as_deref()) {
        Ok(file) => file,
        Err(err) => return fail(&err),
    };
    // a benchmark's own output is what matters: only warnings unless RUST_LOG says more
    let default_filter = match cli.command {
        Command::Bench(_) => "warn",
        _ => "info,sqlx=warn,tower_http=info",
    };
    init_tracing(file.log_json(), default_filter);
    for key in &file.unknown_keys {
        tracing::warn!(key = %key, "unknown config key ignored");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(&err.into()),
    };
    match runtime.block_on(run(cli, file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Prints the error on one line, causes included, and fails.
fn fail(err: &anyhow::Error) -> ExitCode {
    let line = format!("{err:#}").replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}

fn init_tracing(json: bool, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn open_store(
    url: &str,
    file: &FileConfig,
    secret_key: Option<String>,
) -> anyhow::Result<Store> {
    let secret_key = secret_key
        .map(|k| SecretKey::from_base64(&k))
        .transpose()
        .context("SIYU_SECRET_KEY is not valid")?;
    let mut options = StoreOptions {
        secret_key,
        ..StoreOptions::default()
    };
    if let Some(max) = file.max_connections {
        options.max_connections = max;
    }
    let store = Store::connect(url, options).await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(cli: Cli, file: FileConfig) -> anyhow::Result<()> {
    let database_url = cli
        .global
        .database_url
        .clone()
        .or_else(|| file.database_url.clone());
    match cli.command {
        Command::Serve { listen, role } => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let mut made_key = None;
            let secret_key = match (file.secret_key(), key_file::beside(&url)) {
                (Some(key), _) => Some(key),
                (None, Some(path)) => {
                    let loaded = key_file::load_or_create(&path)?;
                    if loaded.created {
                        made_key = Some(path);
                    }
                    Some(loaded.key)
                }
                (None, None) => {
                    tracing::warn!(
                        "no SIYU_SECRET_KEY is set: connectors (whose secrets are sealed with \
                         it) cannot be created"
                    );
                    None
                }
            };
            let store = open_store(&url, &file, secret_key).await?;
            if let Some(path) = made_key
                && store.holds_sealed_secrets().await?
            {
                // a new key cannot open what an old one sealed: the old file went missing
                let _ = std::fs::remove_file(&path);
                anyhow::bail!(
                    "{} is missing but this database holds secrets sealed with it: put the \
                     key file back, or set SIYU_SECRET_KEY to the key",
                    path.display()
                );
            }
            serve(
                store,
                file.server_config(listen),
                file.node_config(role),
                None,
            )
            .await
        }
        Command::Migrate => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            open_store(&url, &file, None).await?;
            println!("migrations applied to {}", siyu_store::redact_url(&url));
            Ok(())
        }
        Command::Tenant(TenantCommand::Create {
            name,
            admin_email,
            admin_password,
            time_zone,
        }) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            let zone = siyu_domain::time::TimeZone::parse("--time-zone", &time_zone)?;
            let new = NewTenant::new(&name, &admin_email, &admin_password)?.in_time_zone(zone);
            let (tenant, _admin) = store.create_tenant(&new, &Actor::cli()).await?;
            println!(
                "created tenant {:?} with root unit {:?} and admin {}",
                tenant.name, tenant.name, new.admin_email
            );
            println!("{}", tenant.id);
            Ok(())
        }
        Command::Tenant(TenantCommand::List) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            for tenant in store.list_tenants().await? {
                println!("{}\t{}", tenant.id, tenant.name);
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            tenant,
            role,
            name,
            expires_in_days,
        }) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            let Some(found) = store.find_tenant_by_name(&tenant).await? else {
                bail!("there is no tenant named {tenant:?} (see `siyu tenant list`)");
            };
            let scope = store.tenant(found.id);
            let role = scope.role_by_name(&role).await?;
            let name = siyu_domain::error::check_name("name", &name, 100)?;
            let expires_at =
                expires_in_days.map(|d| siyu_store::now_ms() + i64::from(d) * 24 * 3600 * 1000);
            let (token, secret) = scope
                .create_api_token(&name, &role, expires_at, None, &Actor::cli())
                .await?;
            println!(
                "created API token {} ({:?}, role {}) for tenant {:?}; it is shown once:",
                token.id, token.name, token.role, found.name
            );
            println!("{secret}");
            Ok(())
        }
        Command::Source(command) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            let tenant_name = match &command {
                SourceCommand::Create { tenant, .. } | SourceCommand::RotateKey { tenant, .. } => {
                    tenant
                }
            };
            let Some(tenant) = store.find_tenant_by_name(tenant_name).await? else {
                bail!("there is no tenant named {tenant_name:?} (see `siyu tenant list`)");
            };
            let scope = store.tenant(tenant.id);
            let (source, key) = match command {
                SourceCommand::Create { name, kind, .. } => {
                    let Some(kind) = siyu_domain::customer::SourceKind::parse(&kind) else {
                        bail!(
                            "unknown source kind {kind:?}: use app, website, mini_program, official_account, wecom, server or other"
                        );
                    };
                    let name = siyu_domain::customer::check_source_name(&name)?;
                    scope.create_source(&name, kind, &Actor::cli()).await?
                }
                SourceCommand::RotateKey { name, .. } => {
                    let Some(source) = scope.find_source_by_name(&name).await? else {
                        bail!("tenant {:?} has no source named {name:?}", tenant.name);
                    };
                    scope.rotate_write_key(source.id, &Actor::cli()).await?
                }
            };
            println!(
                "source {} ({:?}, {}) of tenant {:?}; its write key, shown once:",
                source.id,
                source.name,
                source.kind.as_str(),
                tenant.name
            );
            println!("{key}");
            Ok(())
        }
        Command::Import(command) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            let (kind, args) = match command {
                ImportCommand::Customers(args) => (ImportKind::Customers, args),
                ImportCommand::Orders(args) => (ImportKind::Orders, args),
            };
            transfer::import(
                &store,
                &args.tenant,
                kind,
                &args.file,
                args.map.as_deref(),
                args.rejects.as_deref(),
            )
            .await
        }
        Command::Export(ExportCommand::Customers { tenant, q, output }) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            transfer::export_customers(&store, &tenant, q.as_deref(), output.as_deref()).await
        }
        Command::Ingest(command) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            match command {
                IngestCommand::DeadLetters { limit } => {
                    let aside = store.dead_letters(limit).await?;
                    if aside.is_empty() {
                        println!("no events are set aside");
                    }
                    for d in aside {
                        println!(
                            "{}\ttenant {}\tsource {}\t{}\t{}",
                            d.seq,
                            d.tenant_id,
                            d.source_id,
                            siyu_domain::time::format_rfc3339(d.failed_at),
                            d.error
                        );
                    }
                }
                IngestCommand::Replay { seq } => {
                    let only = (!seq.is_empty()).then_some(seq.as_slice());
                    let replayed = store.replay_dead_letters(only).await?;
                    println!("{replayed} events logged again, to be applied");
                }
            }
            Ok(())
        }
        Command::Jobs(command) => {
            let url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, &file, None).await?;
            jobs_cli::run(&store, command).await
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&siyu_server::openapi_document())?
            );
            Ok(())
        }
        Command::Demo {
            listen,
            customers,
            seed,
        } => {
            let options = demo::DemoOptions { customers, seed };
            demo::run(database_url, listen, options, &file).await
        }
        Command::Bench(BenchCommand::Ingest {
            seconds,
            clients,
            batch,
            users,
            audience,
        }) => {
            let run = bench::IngestBench {
                seconds,
                clients: clients.clamp(1, 64),
                batch: batch.clamp(1, 2500),
                users: users.max(1),
                audience,
            };
            bench::ingest(database_url, &file, run).await
        }
        Command::Bench(BenchCommand::Jobs {
            jobs,
            pickups,
            pickup_rate,
        }) => {
            let run = bench_jobs::JobsBench {
                jobs,
                pickups,
                pickup_rate: pickup_rate.clamp(1, 1_000),
            };
            bench_jobs::run(database_url, &file, run).await
        }
        Command::Bench(BenchCommand::WecomSync { contacts, members }) => {
            let run = bench_wecom::WecomSyncBench {
                contacts: contacts.max(1),
                members: members.clamp(1, 10_000),
            };
            bench_wecom::run(database_url, &file, run).await
        }
        Command::Bench(BenchCommand::Acquisition {
            codes,
            callbacks,
            orders,
            clients,
            members,
            clicks_per_s,
            click_seconds,
        }) => {
            let run = bench_acquisition::AcquisitionBench {
                clicks_per_s: clicks_per_s.clamp(1, 100_000),
                click_seconds: click_seconds.clamp(1, 3_600),
                codes: codes.clamp(1, 100_000),
                callbacks: callbacks.max(1),
                orders,
                clients: clients.clamp(1, 1_000),
                members: members.clamp(1, 10_000),
            };
            bench_acquisition::run(database_url, &file, run).await
        }
        Command::Bench(BenchCommand::Broadcast {
            customers,
            opted_out_every,
            kill_at,
        }) => {
            let run = bench_broadcast::BroadcastBench {
                customers: customers.max(1),
                opted_out_every: opted_out_every.max(1),
                kill_at: kill_at.map(|f| f.clamp(0.0, 1.0)),
            };
            bench_broadcast::run(database_url, &file, run).await
        }
        Command::Bench(BenchCommand::Audience {
            customers,
            events,
            orders,
            tags,
            previews,
            seed,
        }) => bench_audience::run(bench_audience::AudienceBench {
            customers: customers.max(1),
            events,
            orders,
            tags: tags.max(1),
            previews: previews.max(1),
            seed,
        }),
    }
}

/// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
pub(crate) async fn serve(
    store: Store,
    config: siyu_server::ServerConfig,
    node: NodeConfig,
    banner: Option<Box<dyn FnOnce(std::net::SocketAddr) + Send>>,
) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let role = node.role;
    let node = Node::start(store.clone(), node).await?;
    let app = siyu_server::Application::build(config, &node)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = app.local_addr();
    tracing::info!(address = %addr, backend = ?store.backend(), role = role.as_str(), "siyu is serving");
    if let Some(banner) = banner {
        banner(addr);
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("in-flight requests finished; handing back background work");
    node.shutdown().await;
    tracing::info!("closing the database");
    store.close().await;
    Ok(())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: api, worker or all"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
