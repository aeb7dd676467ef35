//! `siyu jobs list|show|retry|cancel|enqueue`: the operator's view of the durable job
//! queue, over every tenant and the system. The command line acts as the system
//! (`Actor::cli()`); a change to a tenant's job is audited in that tenant's log.

use std::collections::HashMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use siyu_domain::audit::Actor;
use siyu_domain::ids::{JobId, TenantId};
use siyu_domain::jobs::{Job, JobState};
use siyu_domain::page::{MAX_LIMIT, PageRequest};
use siyu_domain::time::format_rfc3339;
use siyu_store::{JobFilter, NewJob, Store};

#[derive(Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first: id, tenant, kind, state, tries, progress, created,
    /// last error
    List {
        /// Only this tenant's jobs [default: every tenant's and the system's]
        #[arg(long)]
        tenant: Option<String>,
        /// Only jobs of this kind
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs in this state: waiting, running, done, dead or cancelled
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 500)
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one job as JSON: payload, progress, attempts, last error, times
    Show { id: i64 },
    /// Make a dead or cancelled job wait again, its attempts counted from none
    Retry { id: i64 },
    /// Cancel a waiting job
    Cancel { id: i64 },
    /// Enqueue a job by hand (to run a maintenance job again, say); prints its id last
    Enqueue {
        /// The tenant it is for [default: a job of the system]
        #[arg(long)]
        tenant: Option<String>,
        /// Its kind: the handler that runs it (a-z, 0-9, '.', '_', '-')
        #[arg(long)]
        kind: String,
        /// Its input, as JSON
        #[arg(long, default_value = "{}")]
        payload: String,
        /// While a job of this kind with this key is waiting or running, make none
        #[arg(long)]
        unique_key: Option<String>,
    },
}

pub async fn run(store: &Store, command: JobsCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        JobsCommand::List {
            tenant,
            kind,
            status,
            limit,
        } => {
            if limit == 0 || limit > MAX_LIMIT {
                bail!("--limit must be between 1 and {MAX_LIMIT}");
            }
            let state = status.map(|s| parse_state(&s)).transpose()?;
            let filter = JobFilter { state, kind };
            let page = PageRequest::first(limit);
            let jobs = match tenant {
                Some(name) => {
                    let tenant = find_tenant(store, &name).await?;
                    store.tenant(tenant).list_jobs(page, &filter).await?
                }
                None => store.list_any_jobs(page, &filter).await?,
            };
            let names = tenant_names(store).await?;
            if jobs.items.is_empty() {
                println!("no jobs");
            }
            for job in &jobs.items {
                println!("{}", line(job, &names));
            }
        }
        JobsCommand::Show { id } => {
            let job = store.get_any_job(JobId(id)).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        JobsCommand::Retry { id } => {
            let job = store.retry_any_job(JobId(id), &actor).await?;
            println!("job {} ({}) is waiting again", job.id, job.kind);
        }
        JobsCommand::Cancel { id } => {
            let job = store.cancel_any_job(JobId(id), &actor).await?;
            println!("job {} ({}) is cancelled", job.id, job.kind);
        }
        JobsCommand::Enqueue {
            tenant,
            kind,
            payload,
            unique_key,
        } => {
            check_kind(&kind)?;
            let payload: serde_json::Value =
                serde_json::from_str(&payload).context("--payload is not JSON")?;
            let mut job = NewJob::new(kind.clone(), payload);
            if let Some(name) = tenant {
                job = job.for_tenant(find_tenant(store, &name).await?);
            }
            if let Some(key) = unique_key {
                job = job.unique_key(key);
            }
            let Some(id) = store.enqueue_by_hand(&job, &actor).await? else {
                bail!("a job of kind {kind:?} with that unique key is waiting or running");
            };
            println!("enqueued job {id} ({kind})");
            println!("{id}");
        }
    }
    Ok(())
}

fn parse_state(s: &str) -> anyhow::Result<JobState> {
    JobState::parse(s).with_context(|| {
        let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown state {s:?}: use {}", states.join(", "))
    })
}

fn check_kind(kind: &str) -> anyhow::Result<()> {
    let valid = !kind.is_empty()
        && kind.len() <= 100
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !valid {
        bail!("--kind must be 1 to 100 of a-z, 0-9, '.', '_' and '-'");
    }
    Ok(())
}

async fn find_tenant(store: &Store, name: &str) -> anyhow::Result<TenantId> {
    match store.find_tenant_by_name(name).await? {
        Some(tenant) => Ok(tenant.id),
        None => bail!("there is no tenant named {name:?} (see `siyu tenant list`)"),
    }
}

async fn tenant_names(store: &Store) -> anyhow::Result<HashMap<TenantId, String>> {
    Ok(store
        .list_tenants()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// A job on one line, tab-separated.
fn line(job: &Job, names: &HashMap<TenantId, String>) -> String {
    let tenant = match job.tenant {
        Some(t) => names.get(&t).cloned().unwrap_or_else(|| t.to_string()),
        None => "(system)".to_owned(),
    };
    let progress = match job.progress.total {
        Some(total) => format!("{}/{total}", job.progress.done),
        None if job.progress.done > 0 => job.progress.done.to_string(),
        None => "-".to_owned(),
    };
    let error = job
        .last_error
        .as_deref()
        .map(|e| {
            e.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect()
        })
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{}\t{tenant}\t{}\t{}\t{}/{}\t{progress}\t{}\t{error}",
        job.id,
        job.kind,
        job.state.as_str(),
        job.attempts,
        job.max_attempts,
        format_rfc3339(job.created_at),
    )
}
