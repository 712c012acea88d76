//! gRPC reflection, v1 and v1alpha (Python's client speaks only v1alpha).

use steward_common::Error;
use tonic::service::RoutesBuilder;

pub(super) const HEALTH_SERVICE: &str = tonic_health::pb::health_server::SERVICE_NAME;
pub(super) const REFLECTION_V1: &str =
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
pub(super) const REFLECTION_V1ALPHA: &str =
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;

/// Adds reflection v1 and v1alpha, both listing exactly the served services.
pub(super) fn add_reflection(
    routes: &mut RoutesBuilder,
    descriptor_sets: &[&'static [u8]],
    services: &[&'static str],
    max_message_bytes: usize,
) -> Result<(), Error> {
    let builder = || {
        let builtin = [
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let listed = [HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA]
            .into_iter()
            .chain(services.iter().copied());
        let b = builtin
            .into_iter()
            .chain(descriptor_sets.iter().copied())
            .fold(tonic_reflection::server::Builder::configure(), |b, set| {
                b.register_encoded_file_descriptor_set(set)
            })
            .include_reflection_service(false);
        listed.fold(b, |b, name| b.with_service_name(name))
    };
    let invalid = |e: tonic_reflection::server::Error| {
        Error::failed_precondition(
            "INVALID_DESCRIPTOR_SET",
            format!("reflection cannot use the registered file descriptor sets: {e}"),
        )
    };
    let v1 = builder().build_v1().map_err(invalid)?;
    let v1alpha = builder().build_v1alpha().map_err(invalid)?;
    routes.add_service(crate::with_message_limits!(v1, max_message_bytes));
    routes.add_service(crate::with_message_limits!(v1alpha, max_message_bytes));
    Ok(())
}
