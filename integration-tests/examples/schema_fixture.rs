//! Writes the schema-upgrade fixture data through a running server built at an earlier schema
//! version (see `integration-tests/fixtures/schema/generate.sh`):
//!
//!     cargo run -p steward-integration-tests --example schema_fixture -- http://127.0.0.1:50051 2

use anyhow::Context;
use steward_integration_tests::schema_fixture;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(version)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: schema_fixture ADDR SCHEMA_VERSION");
    };
    let version: u32 = version.parse().context("SCHEMA_VERSION is a number")?;
    // The server may still be starting: retry the connection for a minute.
    let endpoint = tonic::transport::Endpoint::from_shared(addr.clone())?;
    let mut attempts = 0;
    let channel = loop {
        match endpoint.connect().await {
            Ok(c) => break c,
            Err(e) if attempts < 600 => {
                attempts += 1;
                if attempts % 50 == 0 {
                    eprintln!("waiting for {addr}: {e}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {addr}")),
        }
    };
    schema_fixture::populate(channel, version).await?;
    println!("wrote the schema {version} fixture data through {addr}");
    Ok(())
}
