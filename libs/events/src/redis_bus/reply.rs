//! Parsing of stream replies (`XREADGROUP`, `XAUTOCLAIM`), RESP2 and RESP3, tolerating entries
//! that were trimmed from the stream while still pending (their fields come back as nil).

use redis::Value;

/// The field holding the prost-encoded envelope.
pub(super) const ENVELOPE_FIELD: &str = "e";
/// The field holding the event type (for humans and tools reading the stream).
pub(super) const TYPE_FIELD: &str = "type";

/// One stream entry.
#[derive(Debug, PartialEq)]
pub(super) struct Entry {
    /// Stream entry id, e.g. `1700000000000-0`.
    pub(super) id: String,
    pub(super) body: Body,
}

/// What an entry holds.
#[derive(Debug, PartialEq)]
pub(super) enum Body {
    /// The encoded envelope.
    Envelope(Vec<u8>),
    /// The entry was trimmed from the stream (MAXLEN) while pending.
    Deleted,
    /// The entry has no envelope field: not written by this crate.
    Malformed,
}

/// Parses an `XINFO GROUPS` reply (one map, or flat key/value array, per group).
pub(super) fn group_lags(value: Value) -> Result<Vec<crate::bus::GroupLag>, String> {
    let Value::Array(groups) = value else {
        return Err(format!("unexpected XINFO GROUPS reply: {value:?}"));
    };
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let pairs = field_pairs(g)
            .map_err(|other| format!("unexpected group in XINFO GROUPS reply: {other:?}"))?;
        let (mut name, mut pending, mut lag) = (None, 0, None);
        for (k, v) in pairs {
            match (text(&k).as_deref(), v) {
                (Some("name"), v) => name = text(&v),
                (Some("pending"), Value::Int(n)) => pending = u64::try_from(n).unwrap_or(0),
                (Some("lag"), Value::Int(n)) => lag = u64::try_from(n).ok(),
                _ => {}
            }
        }
        out.push(crate::bus::GroupLag {
            group: name.ok_or("a group without a name")?,
            undelivered: lag,
            pending,
        });
    }
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

/// Parses an `XREADGROUP` reply (nil on timeout; one stream as array or map).
pub(super) fn read_reply(value: Value) -> Result<Vec<Entry>, String> {
    let streams: Vec<(Value, Value)> = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(kv) if kv.len() == 2 => {
                    let mut kv = kv.into_iter();
                    Ok((
                        kv.next().unwrap_or(Value::Nil),
                        kv.next().unwrap_or(Value::Nil),
                    ))
                }
                other => Err(format!("unexpected stream in XREADGROUP reply: {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("unexpected XREADGROUP reply: {other:?}")),
    };
    let mut entries = Vec::new();
    for (_key, list) in streams {
        entries.extend(entry_list(list)?);
    }
    Ok(entries)
}

/// Parses an `XAUTOCLAIM` reply into `(next cursor, claimed entries)`. Ids Redis reports as
/// deleted are already gone from the pending list and need nothing more.
pub(super) fn autoclaim_reply(value: Value) -> Result<(String, Vec<Entry>), String> {
    let Value::Array(items) = value else {
        return match value {
            Value::Nil => Ok(("0-0".to_owned(), Vec::new())),
            other => Err(format!("unexpected XAUTOCLAIM reply: {other:?}")),
        };
    };
    let mut items = items.into_iter();
    let cursor = items
        .next()
        .as_ref()
        .and_then(text)
        .ok_or_else(|| "XAUTOCLAIM reply without a cursor".to_owned())?;
    let entries = entry_list(items.next().unwrap_or(Value::Nil))?;
    Ok((cursor, entries))
}

fn entry_list(list: Value) -> Result<Vec<Entry>, String> {
    let items = match list {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(format!("unexpected entry list: {other:?}")),
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match item {
            // Redis 6.2 reports a trimmed entry claimed by XAUTOCLAIM as a bare nil.
            Value::Nil => {}
            Value::Array(parts) => entries.push(entry(parts)?),
            other => return Err(format!("unexpected stream entry: {other:?}")),
        }
    }
    Ok(entries)
}

fn entry(parts: Vec<Value>) -> Result<Entry, String> {
    let mut parts = parts.into_iter();
    let id = parts
        .next()
        .as_ref()
        .and_then(text)
        .ok_or_else(|| "stream entry without an id".to_owned())?;
    let pairs: Vec<(Value, Value)> = match parts.next().unwrap_or(Value::Nil) {
        Value::Nil => {
            return Ok(Entry {
                id,
                body: Body::Deleted,
            });
        }
        other => field_pairs(other)
            .map_err(|other| format!("unexpected fields of entry {id}: {other:?}"))?,
    };
    let body = pairs
        .into_iter()
        .find(|(k, _)| text(k).as_deref() == Some(ENVELOPE_FIELD))
        .and_then(|(_, v)| match v {
            Value::BulkString(bytes) => Some(bytes),
            _ => None,
        })
        .map_or(Body::Malformed, Body::Envelope);
    Ok(Entry { id, body })
}

/// Field/value pairs: a RESP3 map, or a RESP2 flat array `[k1, v1, k2, v2, ...]`; anything
/// else is handed back.
fn field_pairs(value: Value) -> Result<Vec<(Value, Value)>, Value> {
    match value {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
        other => Err(other),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn parses_resp2_read_reply_with_a_trimmed_entry() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![
                        bulk(b"e"),
                        bulk(b"\x00\x01"),
                        bulk(b"type"),
                        bulk(b"t"),
                    ]),
                ]),
                Value::Array(vec![bulk(b"2-0"), Value::Nil]),
                Value::Array(vec![
                    bulk(b"3-0"),
                    Value::Array(vec![bulk(b"x"), bulk(b"y")]),
                ]),
            ]),
        ])]);
        let entries = read_reply(reply).unwrap();
        assert_eq!(
            entries,
            vec![
                Entry {
                    id: "1-0".into(),
                    body: Body::Envelope(vec![0, 1])
                },
                Entry {
                    id: "2-0".into(),
                    body: Body::Deleted
                },
                Entry {
                    id: "3-0".into(),
                    body: Body::Malformed
                },
            ]
        );
        assert!(read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn parses_resp3_read_reply_and_autoclaim() {
        let reply = Value::Map(vec![(
            bulk(b"k"),
            Value::Array(vec![Value::Array(vec![
                bulk(b"5-1"),
                Value::Map(vec![(bulk(b"e"), bulk(b"z"))]),
            ])]),
        )]);
        assert_eq!(
            read_reply(reply).unwrap(),
            vec![Entry {
                id: "5-1".into(),
                body: Body::Envelope(b"z".to_vec())
            }]
        );
        let claim = Value::Array(vec![
            bulk(b"0-0"),
            Value::Array(vec![
                Value::Nil,
                Value::Array(vec![bulk(b"7-0"), Value::Nil]),
            ]),
            Value::Array(vec![bulk(b"6-0")]),
        ]);
        let (cursor, entries) = autoclaim_reply(claim).unwrap();
        assert_eq!(cursor, "0-0");
        assert_eq!(
            entries,
            vec![Entry {
                id: "7-0".into(),
                body: Body::Deleted
            }]
        );
    }
}
