//! Authentication and authorization for every Steward server.
//!
//! - [`key`]: API keys `stw_{id}_{secret}`: random, shown once, stored as a SHA-256 of the secret.
//! - [`role`]: roles (viewer, editor, reviewer, admin) and what each may do.
//! - [`scope`]: the resource a request acts on (`experiments/{e}`, `registeredModels/{m}`,
//!   `deployments/{d}`), which grants are given on.
//! - [`rules`]: one authorization rule per gRPC method of every service (deny by default).
//! - [`store`]: the `api_keys` and `grants` tables.
//! - [`gate`]: the [`steward_grpc::Gate`] every server runs: authenticates the bearer key,
//!   applies the method's rule to the request, filters list responses.
//! - [`admin`] and [`api`]: managing keys and grants, and `steward.auth.v1.AuthService`.

pub mod admin;
pub mod api;
pub mod gate;
pub mod key;
pub mod principal;
pub mod role;
pub mod rules;
pub mod scope;
pub mod store;

pub use gate::{AuthGate, AuthMode};
pub use principal::Principal;
pub use role::{Action, Role};
