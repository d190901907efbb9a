//! The only module that talks to the Docker Engine (through bollard).
//!
//! ward negotiates the API version with the engine (Debian's docker.io speaks
//! 1.41, older than bollard's default) and never pulls an image. Every call
//! is bounded (see [`client`]): an engine that accepts and never answers
//! costs ward a clear error, never a hang. The files split the engine by
//! concern; callers use `crate::docker::…` and never see the split.

mod client;
mod containers;
mod exec;
mod helper;
mod sweep;
mod volumes;

pub use client::{Docker, EngineInfo, blocking, call_timeout, connect, engine_info};
pub use containers::{
    COMPOSE_PROJECT, COMPOSE_SERVICE, ContainerFacts, containers_with_labels, image_command,
    image_config, image_exists, inspect_container, is_running, remove_container, start_container,
    stop_container,
};
pub use exec::{ExecOutput, download, exec, exec_detached, exec_exit_code, exec_stdout, upload};
pub use helper::{HELPER_LABEL, Helper, PostgresServer, unique_name};
pub use sweep::{sweep_if_reachable, sweep_orphans};
pub use volumes::{TempVolume, VolumeFacts, create_volume, inspect_volume, remove_volume};
