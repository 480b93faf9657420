//! The whole platform in one process (`helpdesk serve`), its demo data, and admin commands.

pub mod demo;
mod demo_feedback;
mod demo_knowledge;
pub mod grpc_reference;
mod platform;

pub use platform::{DEMO_TENANT, Platform};
