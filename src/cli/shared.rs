//! Flag groups several verbs share: where snapshots are kept, the container
//! `seed`/`check` connect to, and where a Django project is.

use std::path::PathBuf;

use clap::Args;

/// Where snapshots are kept.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Snapshot store: a directory or s3://BUCKET/PREFIX (endpoint and credentials from
    /// AWS_* or ward.toml [store]) [env: WARD_STORE; ward.toml: [snapshot] store; default ./.ward/snapshots]
    #[arg(long, env = "WARD_STORE", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: Option<PathBuf>,
    /// The age identity file that opens encrypted snapshots (restore, verify, copy)
    /// [env: WARD_AGE_IDENTITY; ward.toml: [store] identity]
    #[arg(long, env = "WARD_AGE_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Encrypt new archives (snapshots, a restore's safety snapshot) with age to this
    /// X25519 recipient (age1…; repeatable) [env: WARD_AGE_RECIPIENTS, comma-separated;
    /// ward.toml: [store] encrypt_to]
    #[arg(
        long = "encrypt-to",
        env = "WARD_AGE_RECIPIENTS",
        value_delimiter = ',',
        value_name = "RECIPIENT"
    )]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in this file, one per line (repeatable)
    /// [ward.toml: [store] recipients_file]
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

/// The Postgres container `ward seed` / `ward check` connect to when no
/// --database-url / DATABASE_URL is given (its published 5432 port and
/// POSTGRES_* environment).
#[derive(Debug, Args, Clone, Default)]
pub struct DbContainerArgs {
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
pub struct DjangoProjectArgs {
    /// The Django project: the directory holding manage.py (default: the working directory).
    #[arg(long, value_name = "DIR")]
    pub django_project: Option<PathBuf>,

    /// The Python that runs manage.py [default: $WARD_PYTHON, else DIR/.venv/bin/python, else python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
}
