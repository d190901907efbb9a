//! `ward check`.

use std::sync::Arc;

use anyhow::Result;

use crate::check::{self, Against, Options, SeedSource, report::Level};
use crate::cli::{AgainstArg, CheckArgs, CheckFormat};
use crate::config::Config;
use crate::error::Exit;
use crate::output::{self, ReportFormat};
use crate::progress::Progress;
use crate::snapshot::{template, throwaway};

pub(crate) async fn run(cfg: &Config, args: &CheckArgs) -> Result<Exit> {
    let against = match args.against()? {
        AgainstArg::Seed => Against::Seed,
        AgainstArg::Url(u) => Against::Url(u),
        AgainstArg::Snapshot(name) => {
            let store = super::snapshot::store(cfg, &args.store)?;
            let manifest = store.load(&name)?;
            let Some(facts) = manifest.template.clone() else {
                // A volume or data-directory snapshot: restore it into a
                // throwaway server on 127.0.0.1 and check a clone of its database.
                let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
                let (server, url) =
                    throwaway::for_check(&store, &manifest, args.database.as_deref(), progress)
                        .await?;
                let db = crate::pg::parse_url(&url)?
                    .get_dbname()
                    .unwrap_or("postgres")
                    .to_string();
                let label = format!(
                    "a clone of database {db} of snapshot {name} (restored into a throwaway server)"
                );
                let result = run_with(cfg, args, Against::Url(url), Some(label)).await;
                // Removed on error too (and by its Drop on Ctrl-C).
                let removed = server.remove().await;
                let exit = result?;
                removed?;
                return Ok(exit);
            };
            // A fast snapshot is a template database in the cluster: check a
            // clone of it (the copy itself is never modified).
            if args.database.is_some() {
                return crate::error::usage(format!(
                    "--database picks a database of a volume snapshot; {name:?} is a --fast snapshot of \
                     one database — drop --database"
                ));
            }
            let (url, _) = super::snapshot::fast_url(
                cfg,
                None,
                manifest.source.container.as_deref(),
                "checking against",
            )
            .await?;
            let tpl = template::with_database(&url, &facts.template_database);
            let _open = template::Opened::new(&url, &name, &facts).await?;
            let label = format!(
                "a clone of the fast snapshot {name} (database {})",
                facts.template_database
            );
            return run_with(cfg, args, Against::Url(tpl), Some(label)).await;
        }
    };
    if args.database.is_some() {
        return crate::error::usage(
            "--database only applies to --against snapshot:NAME (with a URL, name the database in it) — drop --database",
        );
    }
    run_with(cfg, args, against, None).await
}

/// `label` says what the data is when the URL would not (a snapshot's
/// throwaway server has a new port every run).
async fn run_with(
    cfg: &Config,
    args: &CheckArgs,
    against: Against,
    label: Option<String>,
) -> Result<Exit> {
    if args.base.is_some() && matches!(against, Against::Url(_)) {
        return crate::error::usage(
            "--base only applies to --against seed (with a URL, pending = files not in its history table) — drop --base",
        );
    }
    crate::seed::check_patients(0, args.patients)?;
    let opts = Options {
        migrations: args.migrations.clone(),
        format: args.migrations_format,
        against,
        server_url: server_url(cfg, args).await?,
        apply_cmd: args.apply_cmd.clone(),
        base: args.base.clone(),
        seed: match args.spec.clone().or_else(|| cfg.file.seed.spec.clone()) {
            Some(path) => SeedSource::Spec {
                path,
                seed: args.seed.or(cfg.file.seed.seed),
                jobs: crate::config::default_jobs(),
            },
            None => SeedSource::Builtin {
                patients: args.patients,
                seed: args
                    .seed
                    .unwrap_or(crate::seed::spec::Spec::builtin()?.seed),
                jobs: crate::config::default_jobs(),
            },
        },
        timezone_check: args.timezone_check,
        round_trip: args.round_trip,
        against_label: label,
        production: match &args.production_stats {
            Some(from) => Some(check::stats::ProductionStats::load(from).await?),
            None => None,
        },
        django: django_project(args)?,
        accept: args.accept.clone(),
    };
    let bar = output::Bar::new(cfg.quiet);
    let report = check::run(&opts, &bar).await?;
    output::check_report(&report, report_format(cfg.json, args.format), args.strict);
    let worst = report.worst();
    Ok(match worst {
        Some(Level::Fail) => Exit::Findings,
        Some(Level::Warn) if args.strict => Exit::Findings,
        _ => Exit::Ok,
    })
}

/// The CLI's `--format` (or `--json`) as output's rendering.
fn report_format(json: bool, format: CheckFormat) -> ReportFormat {
    if json {
        return ReportFormat::Json;
    }
    match format {
        CheckFormat::Human => ReportFormat::Human,
        CheckFormat::Json => ReportFormat::Json,
        CheckFormat::Junit => ReportFormat::Junit,
        CheckFormat::Github => ReportFormat::Github,
        CheckFormat::Markdown => ReportFormat::Markdown,
        CheckFormat::Sarif => ReportFormat::Sarif,
    }
}

/// The Django project whose runner applies the migrations: `--runner django`,
/// `--django-project`, or a manage.py in the working directory when no other
/// runner is named.
fn django_project(args: &CheckArgs) -> Result<Option<crate::django::Project>> {
    let dj = &args.django_project;
    let other =
        args.migrations.is_some() || args.apply_cmd.is_some() || args.migrations_format.is_some();
    let wanted = args.runner == Some(crate::cli::Runner::Django)
        || dj.django_project.is_some()
        || (!other && crate::django::is_project(&std::env::current_dir()?));
    if !wanted {
        return Ok(None);
    }
    crate::django::Project::locate(dj.django_project.as_deref(), dj.python.as_deref()).map(Some)
}

/// The server for scratch databases: --database-url / DATABASE_URL, else a
/// container named by --container / --compose-service / ward.toml
/// `[snapshot]` (resolved as `ward seed` does), else none (a throwaway cluster).
async fn server_url(cfg: &Config, args: &CheckArgs) -> Result<Option<String>> {
    if cfg.database_url.is_some() {
        return Ok(cfg.database_url.clone());
    }
    let spec = cfg.db_container_target(&args.db);
    if spec.container.is_none() && spec.compose_service.is_none() {
        return Ok(None);
    }
    Ok(Some(
        crate::target::database_url(&spec, &std::env::current_dir()?).await?,
    ))
}
