//! End-to-end tests of the whole platform through real HTTP and gRPC clients.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

mod attachments;
mod bad_input;
mod email;
mod email_servers;
mod email_tls;
mod events;
mod feedback;
mod grpc;
mod knowledge;
mod routing;
mod routing_rest;
mod security;
mod tickets;
mod workspace;
