//! Parquet: spool the bytes, then read every column chunk with the typed
//! column readers of the `parquet` crate (no arrow).
//!
//! Readable codecs: uncompressed, Snappy, gzip, LZ4 (Hadoop and raw). Zstd,
//! Brotli and LZO are not compiled in (zstd needs a C library); a file that
//! uses them is refused with `PARQUET_CODEC_UNSUPPORTED` naming the codec and
//! the column.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use parquet::basic::{Compression, ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;
use steward_common::{Error, ErrorKind, Result};

use crate::PARQUET_MEMORY_BYTES;
use crate::column::Seen;
use crate::csv::unique_names;
use crate::profiler::Table;

const MAGIC: &[u8; 4] = b"PAR1";
/// Records read per batch.
const BATCH: usize = 8192;

/// The bytes of a Parquet file being received.
pub(crate) struct ParquetSpool {
    path: String,
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    /// Bytes kept in memory before spooling to a temporary file.
    memory_limit: usize,
    len: u64,
    head: [u8; 4],
    tail: [u8; 4],
}

fn invalid(path: &str, description: String) -> Error {
    Error::invalid_field(path, description)
}

impl ParquetSpool {
    pub(crate) fn new(path: &str) -> ParquetSpool {
        ParquetSpool {
            path: path.to_string(),
            memory: Vec::new(),
            file: None,
            memory_limit: PARQUET_MEMORY_BYTES,
            len: 0,
            head: [0; 4],
            tail: [0; 4],
        }
    }

    /// Appends bytes (to memory, or to the temporary file past the memory bound).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<()> {
        for (i, &b) in bytes.iter().take(4).enumerate() {
            let at = self.len as usize + i;
            if at < 4 {
                self.head[at] = b;
            }
        }
        if bytes.len() >= 4 {
            self.tail.copy_from_slice(&bytes[bytes.len() - 4..]);
        } else {
            self.tail.rotate_left(bytes.len());
            self.tail[4 - bytes.len()..].copy_from_slice(bytes);
        }
        self.len += bytes.len() as u64;
        if self.file.is_none() && self.memory.len() + bytes.len() <= self.memory_limit {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        let spool_error = |e: std::io::Error| {
            Error::internal(format!("spooling Parquet file to a temporary file: {e}"))
        };
        if self.file.is_none() {
            let mut w =
                BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(spool_error)?);
            w.write_all(&self.memory).map_err(spool_error)?;
            self.memory = Vec::new();
            self.file = Some(w);
        }
        if let Some(w) = &mut self.file {
            w.write_all(bytes).map_err(spool_error)?;
        }
        Ok(())
    }

    /// Reads the file into `table`; returns its row count and columns.
    pub(crate) fn finish(self, table: &mut Table) -> Result<(u64, Vec<usize>)> {
        if self.len < 12 || &self.head != MAGIC || &self.tail != MAGIC {
            return Err(invalid(
                &self.path,
                "not a Parquet file (it does not start and end with the PAR1 magic bytes)".into(),
            ));
        }
        let path = self.path;
        match self.file {
            None => read(Bytes::from(self.memory), &path, table),
            Some(w) => {
                let file = w.into_inner().map_err(|e| {
                    Error::internal(format!("spooling Parquet file to a temporary file: {e}"))
                })?;
                read(file, &path, table)
            }
        }
    }
}

/// How a leaf column is profiled.
#[derive(Debug, Clone, Copy)]
enum Plan {
    I32,
    U32,
    I64,
    U64,
    Float,
    Bool,
    Str,
    /// Count and missing only.
    Count(&'static str),
}

fn plan(descr: &ColumnDescriptor) -> Plan {
    if descr.max_rep_level() > 0 || descr.path().parts().len() > 1 {
        return Plan::Count("nested");
    }
    let logical = descr.logical_type_ref();
    let converted = descr.converted_type();
    match descr.physical_type() {
        PhysicalType::BOOLEAN => Plan::Bool,
        PhysicalType::FLOAT | PhysicalType::DOUBLE => Plan::Float,
        PhysicalType::INT96 => Plan::Count("timestamp"),
        PhysicalType::INT32 => match (logical, converted) {
            (Some(LogicalType::Integer(t)), _) if !t.is_signed => Plan::U32,
            (Some(LogicalType::Integer(_)), _) => Plan::I32,
            (Some(LogicalType::Date), _) | (_, ConvertedType::DATE) => Plan::Count("date"),
            (Some(LogicalType::Time(_)), _) | (_, ConvertedType::TIME_MILLIS) => {
                Plan::Count("time")
            }
            (Some(LogicalType::Decimal(_)), _) | (_, ConvertedType::DECIMAL) => {
                Plan::Count("decimal")
            }
            (_, ConvertedType::UINT_8 | ConvertedType::UINT_16 | ConvertedType::UINT_32) => {
                Plan::U32
            }
            _ => Plan::I32,
        },
        PhysicalType::INT64 => match (logical, converted) {
            (Some(LogicalType::Integer(t)), _) if !t.is_signed => Plan::U64,
            (Some(LogicalType::Integer(_)), _) => Plan::I64,
            (Some(LogicalType::Timestamp(_)), _)
            | (_, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS) => {
                Plan::Count("timestamp")
            }
            (Some(LogicalType::Time(_)), _) | (_, ConvertedType::TIME_MICROS) => {
                Plan::Count("time")
            }
            (Some(LogicalType::Decimal(_)), _) | (_, ConvertedType::DECIMAL) => {
                Plan::Count("decimal")
            }
            (_, ConvertedType::UINT_64) => Plan::U64,
            _ => Plan::I64,
        },
        PhysicalType::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _)
            | (_, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON) => Plan::Str,
            (Some(LogicalType::Decimal(_)), _) | (_, ConvertedType::DECIMAL) => {
                Plan::Count("decimal")
            }
            _ => Plan::Count("binary"),
        },
        PhysicalType::FIXED_LEN_BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::Decimal(_)), _) | (_, ConvertedType::DECIMAL) => {
                Plan::Count("decimal")
            }
            _ => Plan::Count("binary"),
        },
    }
}

fn declared(plan: Plan) -> Seen {
    let mut s = Seen::default();
    match plan {
        Plan::I32 | Plan::U32 | Plan::I64 | Plan::U64 => s.int = true,
        Plan::Float => s.float = true,
        Plan::Bool => s.boolean = true,
        Plan::Str => s.string = true,
        Plan::Count(kind) => s.add_other(kind),
    }
    s
}

/// Reads a whole Parquet file; the `parquet` crate is guarded against panics
/// on malformed input (they become INVALID_ARGUMENT errors).
fn read<R: ChunkReader + 'static>(
    reader: R,
    path: &str,
    table: &mut Table,
) -> Result<(u64, Vec<usize>)> {
    match catch_unwind(AssertUnwindSafe(|| read_inner(reader, path, table))) {
        Ok(r) => r,
        Err(_) => Err(invalid(
            path,
            "invalid Parquet file: the reader failed on malformed data".into(),
        )),
    }
}

fn read_inner<R: ChunkReader + 'static>(
    reader: R,
    path: &str,
    table: &mut Table,
) -> Result<(u64, Vec<usize>)> {
    let bad =
        |e: parquet::errors::ParquetError| invalid(path, format!("invalid Parquet file: {e}"));
    let file = SerializedFileReader::new(reader).map_err(bad)?;
    let meta = file.metadata();
    let schema = meta.file_metadata().schema_descr();
    let width = schema.num_columns();
    if width > crate::MAX_COLUMNS {
        return Err(Error::limit(
            path,
            format!(
                "the file has {width} columns; at most {} are supported",
                crate::MAX_COLUMNS
            ),
        ));
    }
    // Refuse codecs that are not compiled in before reading anything.
    for rg in meta.row_groups() {
        for (i, chunk) in rg.columns().iter().enumerate() {
            let codec = match chunk.compression() {
                Compression::UNCOMPRESSED
                | Compression::SNAPPY
                | Compression::GZIP(_)
                | Compression::LZ4
                | Compression::LZ4_RAW => continue,
                Compression::ZSTD(_) => "ZSTD",
                Compression::BROTLI(_) => "BROTLI",
                Compression::LZO => "LZO",
            };
            let message = format!(
                "column {:?} is compressed with {codec}, which is not supported; \
                 rewrite the file with SNAPPY, GZIP, LZ4 or no compression",
                schema.column(i).path().string()
            );
            return Err(Error::new(
                ErrorKind::Unimplemented,
                "PARQUET_CODEC_UNSUPPORTED",
                format!("{path}: {message}"),
            )
            .with_violation(path, message)
            .with_metadata("codec", codec));
        }
    }
    let names: Vec<String> = schema
        .columns()
        .iter()
        .map(|d| {
            if d.path().parts().len() > 1 {
                d.path().string()
            } else {
                d.name().to_string()
            }
        })
        .collect();
    let mut plans = Vec::with_capacity(width);
    let mut used = Vec::with_capacity(width);
    for (descr, name) in schema.columns().iter().zip(unique_names(names)) {
        let idx = table.column(name, width, path)?;
        let p = plan(descr);
        let col = &mut table.columns[idx];
        col.declare(declared(p));
        if descr.max_def_level() > 0 {
            col.set_nullable();
        }
        plans.push(p);
        used.push(idx);
    }

    let mut rows = 0u64;
    let mut buffers = Buffers::default();
    for g in 0..file.num_row_groups() {
        let rg = file.get_row_group(g).map_err(bad)?;
        let expected = u64::try_from(rg.metadata().num_rows()).unwrap_or(0);
        for (i, (&p, &idx)) in plans.iter().zip(&used).enumerate() {
            let reader = rg.get_column_reader(i).map_err(bad)?;
            let col = &mut table.columns[idx];
            let counts = match (p, reader) {
                (Plan::I32, ColumnReader::Int32ColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.i32, |v| {
                        v.iter().for_each(|&x| col.push_i64(i64::from(x)));
                    })
                }
                (Plan::U32, ColumnReader::Int32ColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.i32, |v| {
                        // Unsigned annotation: reinterpret the bits.
                        v.iter().for_each(|&x| col.push_i64(i64::from(x as u32)));
                    })
                }
                (Plan::I64, ColumnReader::Int64ColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.i64, |v| {
                        v.iter().for_each(|&x| col.push_i64(x));
                    })
                }
                (Plan::U64, ColumnReader::Int64ColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.i64, |v| {
                        v.iter().for_each(|&x| col.push_u64(x as u64));
                    })
                }
                (Plan::Float, ColumnReader::FloatColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.f32, |v| {
                        v.iter().for_each(|&x| col.push_f64(f64::from(x)));
                    })
                }
                (Plan::Float, ColumnReader::DoubleColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.f64, |v| {
                        v.iter().for_each(|&x| col.push_f64(x));
                    })
                }
                (Plan::Bool, ColumnReader::BoolColumnReader(mut r)) => {
                    drain(&mut r, &mut buffers.bool, |v| {
                        v.iter().for_each(|&x| col.push_bool(x));
                    })
                }
                (Plan::Str, ColumnReader::ByteArrayColumnReader(mut r)) => {
                    drain(&mut r, &mut Vec::new(), |v| {
                        v.iter().for_each(|x| col.push_str_bytes(x.data()));
                    })
                }
                (_, reader) => count_only(reader, col),
            }
            .map_err(bad)?;
            let (records, values, levels) = counts;
            table.columns[idx].push_missing(levels - values);
            if records != expected {
                return Err(invalid(
                    path,
                    format!(
                        "invalid Parquet file: column {:?} has {records} rows in row group {g}, \
                         the metadata says {expected}",
                        schema.column(i).path().string()
                    ),
                ));
            }
        }
        rows += expected;
    }
    let declared_rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    if rows != declared_rows {
        return Err(invalid(
            path,
            format!(
                "invalid Parquet file: its row groups hold {rows} rows, the footer says {declared_rows}"
            ),
        ));
    }
    Ok((rows, used))
}

/// Reusable value buffers.
#[derive(Default)]
struct Buffers {
    i32: Vec<i32>,
    i64: Vec<i64>,
    f32: Vec<f32>,
    f64: Vec<f64>,
    bool: Vec<bool>,
}

/// Reads a column chunk in batches, handing the non-null values of each batch
/// to `f`; returns (records, non-null values, levels).
fn drain<T: DataType>(
    r: &mut ColumnReaderImpl<T>,
    values: &mut Vec<T::T>,
    mut f: impl FnMut(&[T::T]),
) -> parquet::errors::Result<(u64, u64, u64)> {
    let mut defs = Vec::with_capacity(BATCH);
    let mut reps = Vec::with_capacity(BATCH);
    let (mut records, mut nvalues, mut nlevels) = (0u64, 0u64, 0u64);
    loop {
        defs.clear();
        reps.clear();
        values.clear();
        let (rec, val, lev) = r.read_records(BATCH, Some(&mut defs), Some(&mut reps), values)?;
        if rec == 0 && lev == 0 {
            break;
        }
        f(&values[..val.min(values.len())]);
        records += rec as u64;
        nvalues += val as u64;
        nlevels += lev as u64;
    }
    Ok((records, nvalues, nlevels))
}

/// Reads any column only to count its values and nulls.
fn count_only(
    reader: ColumnReader,
    col: &mut crate::column::ColumnAcc,
) -> parquet::errors::Result<(u64, u64, u64)> {
    let counts = match reader {
        ColumnReader::BoolColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::Int32ColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::Int64ColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::Int96ColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::FloatColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::DoubleColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::ByteArrayColumnReader(mut r) => drain(&mut r, &mut Vec::new(), |_| {}),
        ColumnReader::FixedLenByteArrayColumnReader(mut r) => {
            drain(&mut r, &mut Vec::new(), |_| {})
        }
    }?;
    col.push_other(counts.1);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;
    use crate::ColumnProfile;

    fn small_file() -> Vec<u8> {
        let schema = Arc::new(
            parse_message_type("message m { REQUIRED INT64 n; OPTIONAL BYTE_ARRAY s (UTF8); }")
                .unwrap(),
        );
        let mut buf = Vec::new();
        let props = Arc::new(WriterProperties::builder().build());
        let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let n: Vec<i64> = (0..1000).collect();
        col.typed::<Int64Type>()
            .write_batch(&n, None, None)
            .unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let s: Vec<ByteArray> = (0..900)
            .map(|i| ByteArray::from(["u", "v", "w"][i % 3]))
            .collect();
        let defs: Vec<i16> = (0..1000).map(|i| i16::from(i < 900)).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&s, Some(&defs), None)
            .unwrap();
        col.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();
        buf
    }

    fn read_with_limit(data: &[u8], limit: usize) -> (u64, Vec<ColumnProfile>) {
        let mut spool = ParquetSpool::new("t.parquet");
        spool.memory_limit = limit;
        for c in data.chunks(100) {
            spool.push(c).unwrap();
        }
        assert_eq!(spool.file.is_some(), data.len() > limit);
        let mut table = Table::new();
        let (rows, _) = spool.finish(&mut table).unwrap();
        (
            rows,
            table.columns.into_iter().map(|c| c.finish()).collect(),
        )
    }

    #[test]
    fn spooled_file_reads_like_memory() {
        let data = small_file();
        let in_memory = read_with_limit(&data, usize::MAX);
        let spooled = read_with_limit(&data, 64);
        assert_eq!(in_memory, spooled);
        assert_eq!(in_memory.0, 1000);
        let s = &in_memory.1[1];
        assert_eq!((s.count, s.missing, s.distinct), (900, 100, 3));
        let n = &in_memory.1[0];
        assert_eq!((n.min, n.max, n.nullable), (Some(0.0), Some(999.0), false));
    }

    #[test]
    fn unsupported_codec_is_named() {
        // Mark column `n` as ZSTD in the footer: in the thrift compact encoding
        // of its ColumnMetaData, path_in_schema = ["n"] (0x18 0x01 'n') is
        // followed by codec = UNCOMPRESSED (field header 0x15, zigzag 0).
        let mut data = small_file();
        let pattern = [0x18, 0x01, b'n', 0x15, 0x00];
        let at = data
            .windows(pattern.len())
            .rposition(|w| w == pattern)
            .expect("codec field of column n");
        data[at + 4] = 12; // zigzag(6) = ZSTD
        let mut spool = ParquetSpool::new("t.parquet");
        spool.push(&data).unwrap();
        let e = spool.finish(&mut Table::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unimplemented);
        assert_eq!(e.reason, "PARQUET_CODEC_UNSUPPORTED");
        assert!(
            e.message.contains("ZSTD") && e.message.contains("\"n\""),
            "{}",
            e.message
        );
        assert_eq!(e.metadata["codec"], "ZSTD");
    }
}
