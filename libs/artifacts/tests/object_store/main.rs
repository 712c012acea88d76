//! The object store test suite: one set of test bodies (`suite`) run against every backend.
//!
//! The local backend always runs. The S3 backend runs when `STEWARD_TEST_S3_ENDPOINT` is set
//! (e.g. `http://127.0.0.1:9000` for `moto_server`), each test on a fresh bucket; if the variable
//! is set and the server cannot be used, the tests fail.

mod backend_specific;
mod suite;
mod support;

/// Generates one `#[tokio::test]` per test body and backend: `local::NAME` and `s3::NAME`
/// (the pattern of quickwit's `metastore_test_suite!`).
macro_rules! object_store_test_suite {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    let harness = crate::support::Harness::local().await;
                    crate::suite::$name(&harness).await;
                    harness.finish().await;
                }
            )*
        }

        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(harness) = crate::support::Harness::s3().await else { return };
                    crate::suite::$name(&harness).await;
                    harness.finish().await;
                }
            )*
        }
    };
}

object_store_test_suite!(
    round_trip,
    empty_object,
    large_object,
    missing_key_is_not_found,
    delete_is_idempotent,
    failed_upload_leaves_nothing,
    dropped_upload_leaves_nothing,
    concurrent_puts_are_atomic,
    put_known_many_stores_each_whole,
    presign,
    describe_and_check,
);
