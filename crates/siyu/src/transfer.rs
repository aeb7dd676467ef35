//! `siyu import customers|orders FILE.csv` and `siyu export customers`: files in and
//! out of the customer pool from the command line, with a progress bar on a terminal.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use siyu_domain::audit::{Actor, AuditRecord, action};
use siyu_domain::customer::{EXPORT_HEADER, export_row};
use siyu_domain::import::{ImportKind, ImportReader, count_rows, parse_mapping};
use siyu_domain::page::PageRequest;
use siyu_store::{Store, TenantScope};

/// Imports a file; prints a summary, and the refused rows (line and reason) to stderr or
/// to `rejects` as CSV. Fails when every row was refused.
pub async fn import(
    store: &Store,
    tenant: &str,
    kind: ImportKind,
    path: &Path,
    mapping: Option<&str>,
    rejects: Option<&Path>,
) -> anyhow::Result<()> {
    let scope = tenant_scope(store, tenant).await?;
    let mapping = parse_mapping(mapping.unwrap_or_default())?;
    let open = || File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let total = count_rows(BufReader::new(open()?));
    let reader = ImportReader::new(
        kind,
        BufReader::new(open()?),
        &mapping,
        siyu_store::now_ms(),
    )
    .with_context(|| format!("{} cannot be imported", path.display()))?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let actor = Actor::cli();
    let result = scope
        .run_import(reader, &actor, |p| bar.set_position(p.processed))
        .await;
    bar.finish_and_clear();
    let progress = result?;
    scope
        .audit(
            actor,
            AuditRecord::new(action::IMPORT_COMPLETED, "import", kind.as_str()).with_details(
                serde_json::json!({"file": path.display().to_string(), "rows": progress.processed,
                    "stored": progress.stored, "unchanged": progress.unchanged,
                    "rejected": progress.rejected}),
            ),
        )
        .await?;
    match rejects {
        Some(out) => {
            let mut writer = csv::Writer::from_path(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            writer.write_record(["line", "reason"])?;
            for row in &progress.rejects {
                writer.write_record([row.line.to_string(), row.reason.clone()])?;
            }
            writer.flush()?;
        }
        None => {
            for row in &progress.rejects {
                eprintln!("line {}: {}", row.line, row.reason);
            }
        }
    }
    if progress.rejected as usize > progress.rejects.len() {
        eprintln!(
            "(the first {} refused rows are listed)",
            progress.rejects.len()
        );
    }
    println!(
        "imported {} {}: {} rows read, {} stored, {} already there, {} refused",
        path.display(),
        kind.as_str(),
        progress.processed,
        progress.stored,
        progress.unchanged,
        progress.rejected
    );
    if progress.processed > 0 && progress.rejected == progress.processed {
        bail!("every row was refused");
    }
    Ok(())
}

/// Exports the tenant's customers (those `q` finds, or all) as CSV, unmasked: the
/// command line is the operator of the server. Audited.
pub async fn export_customers(
    store: &Store,
    tenant: &str,
    q: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let scope = tenant_scope(store, tenant).await?;
    let sink: Box<dyn Write> = match output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(sink);
    writer.write_record(EXPORT_HEADER)?;
    let mut page = PageRequest::first(500);
    let mut count = 0u64;
    loop {
        let list = scope.list_customers(page, q).await?;
        for customer in &list.items {
            writer.write_record(export_row(customer))?;
            count += 1;
        }
        match list.next_cursor {
            Some(cursor) => page = PageRequest::parse(Some(&cursor), Some(500))?,
            None => break,
        }
    }
    writer.flush()?;
    scope
        .audit(
            Actor::cli(),
            AuditRecord::new(action::CUSTOMERS_EXPORTED, "customer", "*")
                .with_details(serde_json::json!({"q": q, "rows": count, "revealed": true})),
        )
        .await?;
    if let Some(path) = output {
        println!("exported {count} customers to {}", path.display());
    }
    Ok(())
}

async fn tenant_scope<'s>(store: &'s Store, tenant: &str) -> anyhow::Result<TenantScope<'s>> {
    let Some(found) = store.find_tenant_by_name(tenant).await? else {
        bail!("there is no tenant named {tenant:?} (see `siyu tenant list`)");
    };
    Ok(store.tenant(found.id))
}
