//! Generated protobuf types, tonic clients and servers, and proto3 JSON for every helpdesk
//! contract. One module per versioned package, mirroring `proto/helpdesk/<package>/v1`.

#![allow(unreachable_pub, clippy::all, missing_docs)]

/// The encoded `FileDescriptorSet` of every contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

pub mod bench {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.bench.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.bench.v1.serde.rs"));
    }
}

pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.common.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.common.v1.serde.rs"));
    }
}

pub mod email {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.email.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.email.v1.serde.rs"));
    }
}

pub mod feedback {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.feedback.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.feedback.v1.serde.rs"));
    }
}

pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.identity.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.identity.v1.serde.rs"));
    }
}

pub mod knowledge {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.knowledge.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.knowledge.v1.serde.rs"));
    }
}

pub mod routing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.routing.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.routing.v1.serde.rs"));
    }
}

pub mod ticketing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.ticketing.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.ticketing.v1.serde.rs"));
    }
}

pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.events.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/helpdesk.events.v1.serde.rs"));
    }
}
