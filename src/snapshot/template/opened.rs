//! Reading a fast snapshot's copy where it lies: `verify` (does it still
//! exist, with the recorded schema?) and [`Opened`], which lets `check
//! --against snapshot:NAME` connect to it for as long as the value lives.

use anyhow::Result;

use super::{TemplateFacts, ensure_ours_with, exists, fingerprint_of, with_database};
use crate::error::UsageError;
use crate::pg::{self, maintenance_url, quote_ident};

/// Checks that the copy still exists and has the recorded schema fingerprint.
/// Returns the problem, if any.
pub async fn verify(url: &str, facts: &TemplateFacts) -> Result<Option<String>> {
    let (admin_url, _) = maintenance_url(url)?;
    let admin = pg::connect(&admin_url).await?;
    let tpl = &facts.template_database;
    if !exists(&admin, tpl).await? {
        return Ok(Some(format!(
            "the template database {tpl} no longer exists in the cluster"
        )));
    }
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            quote_ident(tpl)
        ))
        .await?;
    let result = fingerprint_of(|d| with_database(url, d), tpl).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            quote_ident(tpl)
        ))
        .await?;
    let (fp, _) = result?;
    Ok((fp != facts.schema_fingerprint).then(|| {
        format!(
            "the schema of {tpl} changed since the snapshot (fingerprint {fp}, recorded {})",
            facts.schema_fingerprint
        )
    }))
}

/// Lets sessions connect to a fast snapshot's copy while this value lives
/// (for `ward check --against snapshot:NAME`, which reads it and clones it).
/// Connections are switched off again when it is dropped.
pub struct Opened {
    admin_url: String,
    template: String,
}

impl Opened {
    /// Opens the copy of `snapshot` after proving ward made it for that
    /// snapshot (a manifest must not be able to open another database).
    pub async fn new(url: &str, snapshot: &str, facts: &TemplateFacts) -> Result<Opened> {
        let (admin_url, _) = maintenance_url(url)?;
        let admin = pg::connect(&admin_url).await?;
        if !exists(&admin, &facts.template_database).await? {
            return Err(UsageError(format!(
                "the copy behind this fast snapshot ({}) is gone from the cluster — delete the snapshot",
                facts.template_database
            ))
            .into());
        }
        ensure_ours_with(&admin, snapshot, facts).await?;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                quote_ident(&facts.template_database)
            ))
            .await?;
        Ok(Opened {
            admin_url,
            template: facts.template_database.clone(),
        })
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let (url, tpl) = (self.admin_url.clone(), self.template.clone());
        // Drop cannot await: close the copy on a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = pg::connect(&url).await.ok()?;
                admin
                    .batch_execute(&format!(
                        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                        quote_ident(&tpl)
                    ))
                    .await
                    .ok()
            })
        })
        .join();
    }
}
