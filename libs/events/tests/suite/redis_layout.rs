//! The Redis stream layout other tools rely on: key `{prefix}events`, fields `e` (prost-encoded
//! envelope) and `type`, length capped with `MAXLEN ~`.

use prost::Message;
use redis::Value;
use steward_events::{EventBus, RedisBus, RedisBusOptions};
use steward_proto::events::EventEnvelope;

use crate::support::{TestBackend, envelope};

#[tokio::test]
async fn stream_entries_hold_the_encoded_envelope_and_type() {
    let Some(backend) = TestBackend::redis().await else {
        return;
    };
    let TestBackend::Redis { url, prefix } = &backend else {
        unreachable!()
    };
    let opts = RedisBusOptions {
        max_len: 10,
        ..RedisBusOptions::default()
    };
    let bus = RedisBus::connect_with_options(url, prefix, opts)
        .await
        .unwrap();
    assert_eq!(bus.stream_key(), format!("{prefix}events"));

    let sent: Vec<_> = (1..=1000).map(envelope).collect();
    bus.publish_batch(&sent).await.unwrap();

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(bus.stream_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    // Approximate trimming removes whole stream nodes (100 entries each by default).
    assert!(
        (10..=300).contains(&len),
        "stream trimmed to about max_len, got {len}"
    );

    let last: Value = redis::cmd("XREVRANGE")
        .arg(bus.stream_key())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let fields = field_map(last);
    let decoded = EventEnvelope::decode(fields["e"].as_slice()).unwrap();
    assert_eq!(&decoded, sent.last().unwrap());
    assert_eq!(fields["type"], sent.last().unwrap().r#type.as_bytes());
}

/// Fields of the single entry of an `XREVRANGE ... COUNT 1` reply.
fn field_map(reply: Value) -> std::collections::HashMap<String, Vec<u8>> {
    let Value::Array(mut entries) = reply else {
        panic!("unexpected reply {reply:?}")
    };
    let Value::Array(mut entry) = entries.remove(0) else {
        panic!("unexpected entry")
    };
    let Value::Array(flat) = entry.remove(1) else {
        panic!("unexpected fields")
    };
    flat.chunks(2)
        .map(|kv| match (&kv[0], &kv[1]) {
            (Value::BulkString(k), Value::BulkString(v)) => {
                (String::from_utf8(k.clone()).unwrap(), v.clone())
            }
            other => panic!("unexpected field {other:?}"),
        })
        .collect()
}
