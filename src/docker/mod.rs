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

pub(crate) use client::{Docker, blocking, connect, engine_info};
pub(crate) use containers::{
    COMPOSE_PROJECT, COMPOSE_SERVICE, ContainerFacts, containers_with_labels, image_command,
    image_config, image_exists, inspect_container, is_running, start_container, stop_container,
};
pub(crate) use exec::{
    ExecOutput, download, exec, exec_detached, exec_exit_code, exec_stdout, upload,
};
pub(crate) use helper::{Helper, PostgresServer, unique_name};
pub(crate) use sweep::sweep_if_reachable;
pub(crate) use volumes::{TempVolume, VolumeFacts, create_volume, inspect_volume, remove_volume};
