//! steward-events integration suite: the bus contract against every bus (in-process always,
//! Redis when `STEWARD_TEST_REDIS_URL` is set), the outbox relay, and a real Redis outage.

/// Generates, for each listed test body `async fn(&TestBackend)`, one `#[tokio::test]` per
/// backend: `in_process::<name>` always, `redis::<name>` when `STEWARD_TEST_REDIS_URL` is set
/// (and failing if that Redis is unreachable).
macro_rules! bus_suite {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = crate::support::TestBackend::in_process();
                    super::$test(&backend).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(backend) = crate::support::TestBackend::redis().await else {
                        return;
                    };
                    super::$test(&backend).await;
                }
            )*
        }
    };
}

mod bus;
mod outage;
mod redis_layout;
mod relay;
mod support;
