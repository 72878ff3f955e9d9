//! The health attachable: BuildKit checks it every few seconds and ends a session that stops
//! answering.

use tonic_health::pb::health_server::{Health, HealthServer};

/// The methods of the health service, to announce.
pub(super) const METHODS: &[&str] = &["Check", "Watch"];
/// The health service's name.
pub(super) const NAME: &str = "grpc.health.v1.Health";

/// A health service answering SERVING.
pub(super) fn service() -> HealthServer<impl Health> {
    tonic_health::server::health_reporter().1
}
