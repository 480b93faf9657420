//! What every helpdesk service shares: layered configuration, telemetry, the database pool and
//! migrations, gRPC health and reflection, graceful shutdown, the error table that maps to both
//! gRPC codes and HTTP statuses, and authentication.

pub mod auth;
pub mod batch;
pub mod config;
pub mod db;
pub mod download;
pub mod error;
pub mod grpc;
pub mod net;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use error::{ErrorKind, ServiceError};
