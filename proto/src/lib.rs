//! Generated protobuf types and gRPC stubs of the Steward API.
//!
//! Compiled once from `proto/steward/**` by `build.rs` with protox; the encoded descriptor set is
//! exported as [`FILE_DESCRIPTOR_SET`] for gRPC reflection.

#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every Steward proto (for reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/steward_descriptor.bin"));

/// `inference`: the Open Inference Protocol (KServe v2) served by the deployment service.
pub mod inference {
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}

/// `steward.*` packages.
pub mod steward {
    /// `steward.audit.v1`: read access to the hash-chained audit log.
    pub mod audit {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.audit.v1.rs"));
        }
    }
    /// `steward.auth.v1`: API keys and role grants.
    pub mod auth {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.auth.v1.rs"));
        }
    }
    /// `steward.deployment.v1`: environments, deployments, rollouts, A/B tests, decisions.
    pub mod deployment {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.deployment.v1.rs"));
        }
    }
    /// `steward.events.v1`: the event envelope and domain events.
    pub mod events {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.events.v1.rs"));
        }
    }
    /// `steward.monitoring.v1`: baselines, monitors, drift reports, performance and alerts.
    pub mod monitoring {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.monitoring.v1.rs"));
        }
    }
    /// `steward.registry.v1`: registered models, versions, lineage, aliases and approvals.
    pub mod registry {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.registry.v1.rs"));
        }
    }
    /// `steward.tracking.v1`: experiments, runs, metrics, datasets and artifacts.
    pub mod tracking {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/steward.tracking.v1.rs"));
        }
    }
}

pub use steward::audit::v1 as audit;
pub use steward::auth::v1 as auth;
pub use steward::deployment::v1 as deployment;
pub use steward::events::v1 as events;
pub use steward::monitoring::v1 as monitoring;
pub use steward::registry::v1 as registry;
pub use steward::tracking::v1 as tracking;
