//! Decision records of the deployment service, consumed from the event bus, as predictions of
//! the monitors of their deployment.
//!
//! Only `infer` decisions count (routes carry no inputs; shadow answers are not served). A
//! decision's input tensors become columns: `{tensor}` for one column, `{tensor}[{j}]` for
//! column `j` of a `[rows, columns]` tensor; a feature without an explicit `input` takes the
//! column at its position in the baseline. A request of several rows gives one record per row,
//! `{request_id}` for the first and `{request_id}#{row}` for the others.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as Json;
use steward_common::Error;
use steward_proto::events as epb;

use super::Monitoring;
use super::ingest::Record;
use crate::domain::Monitor;
use crate::domain::columns::Value;

/// Tensors as named columns of rows.
#[derive(Debug, Default)]
pub struct Table {
    /// Column names in order.
    pub names: Vec<String>,
    /// Columns (each `rows` long).
    pub columns: Vec<Vec<Value>>,
    /// Rows.
    pub rows: usize,
}

impl Table {
    /// Parses `[{"name", "shape", "data"}]` JSON tensors; None when it is not that shape.
    pub fn parse(json: &str) -> Option<Table> {
        let v: Json = serde_json::from_str(json).ok()?;
        let mut t = Table::default();
        let mut rows_seen: Option<usize> = None;
        for tensor in v.as_array()? {
            let name = tensor.get("name")?.as_str()?.to_string();
            let shape: Vec<usize> = tensor
                .get("shape")?
                .as_array()?
                .iter()
                .map(|d| d.as_u64().map(|x| x as usize))
                .collect::<Option<_>>()?;
            let data = tensor.get("data")?.as_array()?;
            let rows = shape.first().copied().unwrap_or(1);
            let cols: usize = shape.iter().skip(1).product::<usize>().max(1);
            if rows.checked_mul(cols)? != data.len() || *rows_seen.get_or_insert(rows) != rows {
                return None;
            }
            for c in 0..cols {
                t.names.push(if cols == 1 {
                    name.clone()
                } else {
                    format!("{name}[{c}]")
                });
                t.columns
                    .push((0..rows).map(|r| json_value(&data[r * cols + c])).collect());
            }
        }
        t.rows = rows_seen.unwrap_or(0);
        Some(t)
    }

    fn column(&self, name: &str) -> Option<&Vec<Value>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }
}

fn json_value(v: &Json) -> Value {
    match v {
        Json::Number(n) => n.as_f64().map_or(Value::Missing, Value::Num),
        Json::String(s) => Value::Cat(s.clone()),
        Json::Bool(b) => Value::Cat(b.to_string()),
        _ => Value::Missing,
    }
}

/// The records one decision gives a monitor (`positions`: each feature's baseline position).
pub fn records_of(m: &Monitor, positions: &[usize], d: &epb::Decision) -> Vec<Record> {
    let inputs_json = if d.monitor_inputs_json.is_empty() {
        &d.inputs_json
    } else {
        &d.monitor_inputs_json
    };
    let inputs = Table::parse(inputs_json).unwrap_or_default();
    let outputs = Table::parse(&d.outputs_json).unwrap_or_default();
    let rows = inputs.rows.max(1);
    let pred_col = if m.spec.prediction_output.is_empty() {
        outputs.columns.first()
    } else {
        outputs.column(&m.spec.prediction_output)
    };
    let time = d
        .time
        .as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or_else(steward_common::time::now_ms);
    (0..rows)
        .map(|r| {
            let mut features = HashMap::with_capacity(m.spec.features.len());
            for (i, f) in m.spec.features.iter().enumerate() {
                let col = if f.input.is_empty() {
                    positions.get(i).and_then(|p| inputs.columns.get(*p))
                } else {
                    inputs.column(&f.input)
                };
                if let Some(v) = col.and_then(|c| c.get(r)) {
                    features.insert(f.name.clone(), v.clone());
                }
            }
            Record {
                request_id: if r == 0 {
                    d.request_id.clone()
                } else {
                    format!("{}#{r}", d.request_id)
                },
                time,
                features,
                prediction: pred_col
                    .and_then(|c| c.get(r))
                    .cloned()
                    .unwrap_or(Value::Missing),
                variant: d.variant.clone(),
                model_version: d.model_version.clone(),
                latency_us: d.latency_us,
                error: !d.error.is_empty(),
            }
        })
        .collect()
}

impl Monitoring {
    /// Feeds recorded decisions to the monitors of their deployments; returns the records
    /// stored. Idempotent: a decision seen before is skipped by its request id.
    pub async fn on_decisions(&self, decisions: &[epb::Decision]) -> Result<i64, Error> {
        let mut by_dep: BTreeMap<&str, Vec<&epb::Decision>> = BTreeMap::new();
        for d in decisions.iter().filter(|d| d.kind == "infer") {
            if let Some(dep) = d.deployment.strip_prefix("deployments/") {
                by_dep.entry(dep).or_default().push(d);
            }
        }
        let mut stored = 0;
        for (dep, ds) in by_dep {
            for m in self.monitors_of(dep).await?.iter() {
                let reference = self.reference(&m.baseline).await?;
                let positions: Vec<usize> = m
                    .spec
                    .features
                    .iter()
                    .map(|f| {
                        reference
                            .baseline
                            .features
                            .iter()
                            .position(|b| b.name == f.name)
                            .unwrap_or(usize::MAX)
                    })
                    .collect();
                let records: Vec<Record> = ds
                    .iter()
                    .flat_map(|d| records_of(m, &positions, d))
                    .collect();
                match self.ingest(&m.id, records).await {
                    Ok(i) => stored += i.accepted,
                    // A record this monitor can never take (e.g. a request id too long with its
                    // row suffix) must not block the stream: skipped, and said so.
                    Err(e) if e.kind == steward_common::ErrorKind::InvalidArgument => {
                        tracing::warn!(monitor = %m.id, error = %e, "decisions skipped: not valid predictions");
                    }
                    // The monitor was deleted meanwhile.
                    Err(e) if e.kind == steward_common::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_become_named_columns() {
        let t = Table::parse(
            r#"[{"name":"features","datatype":"FP32","shape":[2,3],"data":[1,2,3,4,5,null]},
                {"name":"country","datatype":"BYTES","shape":[2],"data":["de","fr"]}]"#,
        )
        .unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(
            t.names,
            vec!["features[0]", "features[1]", "features[2]", "country"]
        );
        assert_eq!(t.columns[1], vec![Value::Num(2.0), Value::Num(5.0)]);
        assert_eq!(t.columns[2][1], Value::Missing);
        assert_eq!(t.columns[3][1], Value::Cat("fr".into()));
        // Inconsistent shapes are not a table.
        assert!(Table::parse(r#"[{"name":"x","shape":[2,2],"data":[1,2,3]}]"#).is_none());
        assert!(Table::parse("{}").is_none());
    }
}
