//! Flag groups several verbs share: where snapshots are kept, the container
//! `seed`/`check` connect to, and where a Django project is.

use std::path::PathBuf;

use clap::Args;

/// Where snapshots are kept.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct StoreArgs {
    /// Snapshot store: a directory or s3://BUCKET/PREFIX (endpoint and credentials from
    /// AWS_* or ward.toml [store]) [env: WARD_STORE; ward.toml: [snapshot] store; default ./.ward/snapshots]
    #[arg(long, env = "WARD_STORE", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: Option<PathBuf>,
    /// The age identity file that opens encrypted snapshots (restore, verify, copy)
    /// [env: WARD_AGE_IDENTITY; ward.toml: [store] identity]
    #[arg(long, env = "WARD_AGE_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub recipients: RecipientArgs,
}

/// The age recipients new archives are encrypted to: `ward snapshot`'s
/// (with `--store`: snapshots, a restore's safety snapshot) and `ward
/// backup`'s. One rule for both, in `config::FileStore::recipients`: these
/// flags, else WARD_AGE_RECIPIENTS, else ward.toml.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RecipientArgs {
    /// Encrypt new archives with age to this X25519 recipient (age1…; repeatable)
    /// [over WARD_AGE_RECIPIENTS, comma-separated, over ward.toml [store] encrypt_to]
    #[arg(long = "encrypt-to", value_delimiter = ',', value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in this file, one per line (repeatable)
    /// [over WARD_AGE_RECIPIENTS, over ward.toml [store] recipients_file]
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

impl RecipientArgs {
    /// Whether no recipient flag was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.encrypt_to.is_empty() && self.recipients_files.is_empty()
    }
}

/// The Postgres container `ward seed` / `ward check` connect to when no
/// --database-url / DATABASE_URL is given (its published 5432 port and
/// POSTGRES_* environment).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DbContainerArgs {
    /// Connect to this container's database (when no --database-url).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Connect to this compose service's container (when no --database-url).
    #[arg(long, value_name = "SERVICE")]
    pub compose_service: Option<String>,
    /// The compose project (default: the current directory's, or COMPOSE_PROJECT_NAME).
    #[arg(long, value_name = "PROJECT")]
    pub compose_project: Option<String>,
}

/// Where a Django project is and which Python runs it.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DjangoProjectArgs {
    /// The Django project: the directory holding manage.py (default: the working directory).
    #[arg(long, value_name = "DIR")]
    pub django_project: Option<PathBuf>,

    /// The Python that runs manage.py [default: $WARD_PYTHON, else DIR/.venv/bin/python, else python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
}
