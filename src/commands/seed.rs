//! `ward seed`.

use std::path::Path;

use anyhow::Result;

use crate::cli::SeedArgs;
use crate::config::{Config, SeedConfig};
use crate::error::Exit;
use crate::seed::load::{Existing, LoadOptions};
use crate::seed::{SeedReport, custom, export, load, spec::Spec};
use crate::{output, pg};

pub(crate) async fn run(cfg: &Config, args: &SeedArgs) -> Result<Exit> {
    let spec = Spec::builtin()?;
    let settings = cfg.seed(args, spec.seed);
    crate::seed::pipeline::check_jobs(settings.jobs)?;
    if let Some(path) = &args.init_spec {
        return init_spec(cfg, args, path).await;
    }
    let bar = output::Bar::new(cfg.quiet);
    let report = if let Some(spec) = &settings.spec {
        seed_spec(cfg, args, &settings, spec, &bar).await?
    } else if let Some((dir, format)) = &settings.export {
        let (dir, format) = (dir.clone(), *format);
        let (seed, patients, jobs) = (settings.seed, settings.patients, settings.jobs);
        tokio::task::spawn_blocking(move || {
            export::export(&dir, format, seed, patients, jobs, &bar)
        })
        .await??
    } else {
        seed_builtin(cfg, args, &settings, &bar).await?
    };
    output::seed_report(&report, cfg.json);
    Ok(Exit::Ok)
}

/// `--init-spec PATH`: a spec guessed from the database's schema.
async fn init_spec(cfg: &Config, args: &SeedArgs, path: &Path) -> Result<Exit> {
    let url = database_url(cfg, args).await?;
    let client = pg::connect(&url).await?;
    let models = match django_project(args)? {
        Some(project) => Some(project.models(&crate::django::database_url(&url)?).await?),
        None => None,
    };
    let report = custom::init_spec(&client, path, models.as_ref()).await?;
    output::init_spec_report(&report, cfg.json);
    Ok(Exit::Ok)
}

/// `--spec PATH`: the application's own schema, by its spec.
async fn seed_spec(
    cfg: &Config,
    args: &SeedArgs,
    settings: &SeedConfig,
    spec: &Path,
    bar: &output::Bar,
) -> Result<SeedReport> {
    let url = database_url(cfg, args).await?;
    let target = pg::describe(&pg::parse_url(&url)?);
    let mut client = pg::connect(&url).await?;
    let run = custom::SpecRun {
        target,
        path: spec,
        seed: args.seed.or(cfg.file.seed.seed),
        jobs: settings.jobs,
        truncate: settings.truncate,
    };
    custom::seed_asking(
        &mut client,
        run,
        &|question: &str| output::confirm(question, args.yes),
        bar,
    )
    .await
}

/// The built-in patient model, loaded into the database.
async fn seed_builtin(
    cfg: &Config,
    args: &SeedArgs,
    settings: &SeedConfig,
    bar: &output::Bar,
) -> Result<SeedReport> {
    crate::seed::check_patients(0, settings.patients)?;
    let url = database_url(cfg, args).await?;
    let target = pg::describe(&pg::parse_url(&url)?);
    let mut client = pg::connect(&url).await?;
    let opts = LoadOptions {
        schema: settings.schema.clone(),
        seed: settings.seed,
        patients: settings.patients,
        jobs: settings.jobs,
        existing: match (settings.truncate, settings.append) {
            (true, _) => Existing::Truncate,
            (_, true) => Existing::Append,
            _ => Existing::Refuse,
        },
    };
    load::load(&mut client, target, &opts, bar).await
}

/// The Django project to ask, with `--django`, `--django-project`, or a
/// manage.py in the working directory.
fn django_project(args: &SeedArgs) -> Result<Option<crate::django::Project>> {
    let dj = &args.django_project;
    let wanted = args.django
        || dj.django_project.is_some()
        || crate::django::is_project(&std::env::current_dir()?);
    if !wanted {
        return Ok(None);
    }
    crate::django::Project::locate(dj.django_project.as_deref(), dj.python.as_deref()).map(Some)
}

/// --database-url / DATABASE_URL, else the target container's database.
async fn database_url(cfg: &Config, args: &SeedArgs) -> Result<String> {
    match &cfg.database_url {
        Some(url) => Ok(url.clone()),
        None => {
            let spec = cfg.db_container_target(&args.db);
            crate::target::database_url(&spec, &std::env::current_dir()?).await
        }
    }
}
