//! Scratch databases for one check: the server they live on, connections
//! to them, and their removal at the end — also when the run is interrupted,
//! because a Ctrl-C must not leave clones of patient-shaped data behind.

use anyhow::{Result, anyhow};
use tokio_postgres::{Client, Config};

use crate::error::UsageError;
use crate::pg::{self, quote_ident};

pub(super) async fn connect(cfg: &Config) -> Result<Client> {
    let (client, conn) = pg::answered(cfg, &pg::describe(cfg)).await?.map_err(|e| {
        UsageError(format!(
            "cannot connect to {} ({}) — is Postgres running and the URL right?",
            pg::describe(cfg),
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string())
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

pub(super) fn with_db(cfg: &Config, db: &str) -> Config {
    let mut c = cfg.clone();
    c.dbname(db);
    c
}

/// Scratch databases this run created; all dropped at the end.
pub(super) struct Scratch {
    pub(super) admin: Client,
    pub(super) server: Config,
    /// The database the admin connection uses.
    pub(super) admin_db: String,
    pub(super) made: Vec<String>,
    pub(super) counter: usize,
    pub(super) _cluster: Option<pg::cluster::Cluster>,
}

impl Scratch {
    pub(super) fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("ward_check_{}_{}_{what}", std::process::id(), self.counter)
    }

    pub(super) async fn create(&mut self, what: &str, template: Option<&str>) -> Result<String> {
        let name = self.name(what);
        let created = match template {
            Some(source) => pg::clone_database(&self.admin, source, &name, None).await,
            None => {
                self.admin
                    .batch_execute(&format!(
                        "CREATE DATABASE {} TEMPLATE template0",
                        quote_ident(&name)
                    ))
                    .await
            }
        };
        self.created(name, template, created)
    }

    /// Clones of `template`, one per name in `what`, made at the same time
    /// on connections of their own: a clone is mostly the server copying
    /// files, and two copies side by side take less than one after the other.
    pub(super) async fn clone_together(
        &mut self,
        what: &[&str],
        template: &str,
    ) -> Result<Vec<String>> {
        let names: Vec<String> = what.iter().map(|w| self.name(w)).collect();
        let admin_cfg = with_db(&self.server, &self.admin_db);
        let mut extra = Vec::new();
        for _ in names.iter().skip(1) {
            extra.push(connect(&admin_cfg).await?);
        }
        let admins = std::iter::once(&self.admin).chain(extra.iter());
        let results = futures_util::future::join_all(
            admins
                .zip(&names)
                .map(|(admin, name)| pg::clone_database(admin, template, name, None)),
        )
        .await;
        // Every clone that was made is registered first, so an error below
        // still leaves nothing behind.
        let mut first_error = None;
        let mut made = Vec::new();
        for (name, result) in names.into_iter().zip(results) {
            match self.created(name, Some(template), result) {
                Ok(name) => made.push(name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(made),
        }
    }

    /// Registers `name` when its CREATE DATABASE succeeded; the error, said
    /// for a user, when it did not.
    fn created(
        &mut self,
        name: String,
        template: Option<&str>,
        result: Result<(), tokio_postgres::Error>,
    ) -> Result<String> {
        match result {
            Ok(()) => {}
            Err(e) if e.code().map(|c| c.code()) == Some("55006") => {
                return Err(UsageError(format!(
                    "cannot clone database {} — other sessions are connected to it, and ward clones by \
                     template (it never modifies the source): stop the application (or use a snapshot), then check again",
                    template.unwrap_or("?")
                ))
                .into());
            }
            Err(e) if e.code().map(|c| c.code()) == Some("42501") => {
                return Err(UsageError(format!(
                    "the role {} may not create databases — ward needs CREATEDB to make its clones \
                     (ALTER ROLE … CREATEDB, or use a superuser on a development server)",
                    self.server.get_user().unwrap_or("?")
                ))
                .into());
            }
            Err(e) => return Err(anyhow!("creating {name}: {e}")),
        }
        self.made.push(name.clone());
        Ok(name)
    }

    pub(super) async fn connect(&self, db: &str) -> Result<Client> {
        connect(&with_db(&self.server, db)).await
    }

    pub(super) async fn drop_all(&mut self) {
        for db in self.made.drain(..).rev() {
            if let Err(e) = self
                .admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&db)
                ))
                .await
            {
                tracing::warn!("could not drop scratch database {db}: {e}");
            }
        }
    }
}

/// When the run is interrupted (Ctrl-C drops the future), the scratch
/// databases are still dropped: on a thread of its own, with its own runtime.
impl Drop for Scratch {
    fn drop(&mut self) {
        if self.made.is_empty() {
            return;
        }
        let dbs = std::mem::take(&mut self.made);
        let server = self.server.clone();
        let admin_db = self.admin_db.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(admin) = connect(&with_db(&server, &admin_db)).await else {
                    return;
                };
                for db in dbs.iter().rev() {
                    let _ = admin
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(db)
                        ))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
