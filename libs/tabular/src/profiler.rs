//! The streaming [`Profiler`] and the column table it fills.

use std::collections::HashMap;

use steward_common::{Error, Result};

use crate::column::ColumnAcc;
use crate::csv::CsvFile;
use crate::parquet::ParquetSpool;
use crate::{FileProfile, Format, MAX_COLUMNS, frequent_capacity};

/// Files up to this many columns buffer numbers in sorted batches (at most
/// 32 KiB per numeric column); wider ones insert them one by one.
const BATCHED_WIDTH: usize = 256;

/// Columns accumulated over the files of one profile, matched by name.
pub(crate) struct Table {
    pub(crate) columns: Vec<ColumnAcc>,
    by_name: HashMap<String, usize>,
    /// Rows of the files already ended.
    num_rows: u64,
}

impl Table {
    /// An empty table.
    pub(crate) fn new() -> Table {
        Table {
            columns: Vec::new(),
            by_name: HashMap::new(),
            num_rows: 0,
        }
    }

    /// The column named `name`, created if new (the rows of earlier files count
    /// as missing in it). `width` is the column count of the current file.
    pub(crate) fn column(&mut self, name: String, width: usize, path: &str) -> Result<usize> {
        if let Some(&i) = self.by_name.get(&name) {
            return Ok(i);
        }
        if self.columns.len() >= MAX_COLUMNS {
            return Err(Error::limit(
                path,
                format!("more than {MAX_COLUMNS} columns; at most {MAX_COLUMNS} are supported"),
            ));
        }
        let mut col = ColumnAcc::new(
            name.clone(),
            frequent_capacity(width),
            width <= BATCHED_WIDTH,
        );
        if self.num_rows > 0 {
            col.push_missing(self.num_rows);
            col.set_nullable();
        }
        let i = self.columns.len();
        self.columns.push(col);
        self.by_name.insert(name, i);
        Ok(i)
    }

    /// Ends a file of `rows` rows with columns `used`: the other columns get
    /// `rows` missing values.
    fn end_file(&mut self, rows: u64, used: &[usize]) {
        if rows > 0 {
            let mut in_file = vec![false; self.columns.len()];
            for &i in used {
                in_file[i] = true;
            }
            for (col, used) in self.columns.iter_mut().zip(in_file) {
                if !used {
                    col.push_missing(rows);
                    col.set_nullable();
                }
            }
        }
        self.num_rows += rows;
    }
}

enum FileState {
    /// Boxed: the csv-core reader is large.
    Csv(Box<CsvFile>),
    Parquet(ParquetSpool),
}

/// Streaming profiler: feed a file's bytes in order with [`Profiler::push`]
/// (any chunking gives the same profile), optionally continue with more files
/// of the same version with [`Profiler::next_file`], then call
/// [`Profiler::finish`].
///
/// CSV is parsed as it arrives; Parquet is buffered (in memory up to
/// [`PARQUET_MEMORY_BYTES`](crate::PARQUET_MEMORY_BYTES), then in an anonymous
/// temporary file) and read when the file ends. After an error every later call
/// returns the same error.
pub struct Profiler {
    table: Table,
    file: Option<FileState>,
    failed: Option<Error>,
}

impl Profiler {
    /// Starts profiling the file at `path` (used in error messages) in `format`.
    pub fn new(format: Format, path: &str) -> Profiler {
        Profiler {
            table: Table::new(),
            file: Some(start(format, path)),
            failed: None,
        }
    }

    /// Feeds the next bytes of the current file.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match &mut self.file {
            Some(FileState::Csv(f)) => f.push(bytes, &mut self.table),
            Some(FileState::Parquet(f)) => f.push(bytes),
            None => Ok(()),
        };
        self.check(result)
    }

    /// Ends the current file and starts the next file of the same profile
    /// (for example the next part file of a dataset version). Columns are matched
    /// by name; a column missing from a file counts that file's rows as missing;
    /// types widen over all values (int64 + float64 is float64, any other mix is
    /// string). The result is exactly the profile of the concatenated rows.
    pub fn next_file(&mut self, format: Format, path: &str) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.end_file();
        self.check(result)?;
        self.file = Some(start(format, path));
        Ok(())
    }

    /// Ends the last file and returns the profile.
    pub fn finish(mut self) -> Result<FileProfile> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.end_file()?;
        Ok(FileProfile {
            num_rows: self.table.num_rows,
            columns: self
                .table
                .columns
                .into_iter()
                .map(ColumnAcc::finish)
                .collect(),
        })
    }

    fn end_file(&mut self) -> Result<()> {
        let (rows, used) = match self.file.take() {
            Some(FileState::Csv(f)) => f.finish(&mut self.table)?,
            Some(FileState::Parquet(f)) => f.finish(&mut self.table)?,
            None => return Ok(()),
        };
        self.table.end_file(rows, &used);
        Ok(())
    }

    fn check(&mut self, result: Result<()>) -> Result<()> {
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }
}

fn start(format: Format, path: &str) -> FileState {
    match format {
        Format::Csv => FileState::Csv(Box::new(CsvFile::new(path, b','))),
        Format::Tsv => FileState::Csv(Box::new(CsvFile::new(path, b'\t'))),
        Format::Parquet => FileState::Parquet(ParquetSpool::new(path)),
    }
}
