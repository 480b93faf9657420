//! Every SQL statement of ticketing, one function per query, one module per group of tables;
//! the domain modules call them and keep the rules. Functions that run on a pool take the
//! [`Database`](helpdesk_runtime::db::Database) and pick its reader or writer; those that belong
//! in a transaction, or share one connection, take the `AnyConnection`. Every statement names its
//! tenant, first after the executor; the batch statements of ticket creation, which span
//! tenants, take each row's own.

mod customers;
mod fields;
mod idempotency;
mod messages;
mod replies;
mod search;
mod sql;
mod tickets;

pub(crate) use self::{customers::*, fields::*, idempotency::*, messages::*, replies::*, search::*, tickets::*};
