//! Push-based CSV / TSV reading on `csv-core`: bytes in any chunking, one
//! record buffer (reused), no allocation per cell.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use steward_common::{Error, Result};

use crate::profiler::Table;
use crate::{MAX_COLUMNS, MAX_RECORD_BYTES};

/// State of one CSV file being read.
pub(crate) struct CsvFile {
    path: String,
    reader: Reader,
    /// The first bytes, held until there are 3 of them so that `csv-core` sees
    /// a whole UTF-8 byte order mark (if any) in its first input, whatever the
    /// chunking.
    head: Option<Vec<u8>>,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Field index -> table column, once the header is read.
    header: Option<Vec<usize>>,
    rows: u64,
}

fn invalid(path: &str, description: String) -> Error {
    Error::invalid_field(path, description)
}

impl CsvFile {
    /// Starts reading a file with `delimiter`.
    pub(crate) fn new(path: &str, delimiter: u8) -> CsvFile {
        CsvFile {
            path: path.to_string(),
            reader: ReaderBuilder::new().delimiter(delimiter).build(),
            head: Some(Vec::with_capacity(3)),
            out: vec![0; 64 << 10],
            out_len: 0,
            ends: vec![0; 256],
            ends_len: 0,
            header: None,
            rows: 0,
        }
    }

    /// Feeds the next bytes of the file.
    pub(crate) fn push(&mut self, mut bytes: &[u8], table: &mut Table) -> Result<()> {
        if let Some(head) = &mut self.head {
            let take = (3 - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if head.len() < 3 {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.head = None;
            self.feed(&head, table)?;
        }
        self.feed(bytes, table)
    }

    fn feed(&mut self, mut input: &[u8], table: &mut Table) -> Result<()> {
        // An empty input means end of data to csv-core: never pass one here.
        while !input.is_empty() {
            let (res, nin, nout, nend) = self.reader.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            let ended_with_newline = nin > 0 && input[nin - 1] == b'\n';
            input = &input[nin..];
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => {}
                ReadRecordResult::OutputFull => self.grow_out()?,
                ReadRecordResult::OutputEndsFull => self.grow_ends()?,
                ReadRecordResult::Record => {
                    // The record's last line: the terminating '\n' (if that
                    // was the terminator) is already counted.
                    let line = self.reader.line() - u64::from(ended_with_newline);
                    self.record(line, table)?;
                }
            }
        }
        Ok(())
    }

    /// Ends the file: reads the last record; returns the number of data rows
    /// and the table columns of this file.
    pub(crate) fn finish(mut self, table: &mut Table) -> Result<(u64, Vec<usize>)> {
        if let Some(head) = self.head.take() {
            self.feed(&head, table)?;
        }
        loop {
            let (res, _, nout, nend) = self.reader.read_record(
                &[],
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                // With no input left csv-core never asks for more.
                ReadRecordResult::End | ReadRecordResult::InputEmpty => break,
                ReadRecordResult::Record => {
                    let line = self.reader.line();
                    self.record(line, table)?;
                }
                ReadRecordResult::OutputFull => self.grow_out()?,
                ReadRecordResult::OutputEndsFull => self.grow_ends()?,
            }
        }
        match self.header {
            Some(map) => Ok((self.rows, map)),
            None => Err(invalid(
                &self.path,
                "the file is empty; a CSV file needs a header row with the column names".into(),
            )),
        }
    }

    fn grow_out(&mut self) -> Result<()> {
        if self.out.len() >= MAX_RECORD_BYTES {
            return Err(Error::limit(
                &self.path,
                format!(
                    "line {}: a record is larger than {} MiB",
                    self.reader.line(),
                    MAX_RECORD_BYTES >> 20
                ),
            ));
        }
        let len = (self.out.len() * 2).min(MAX_RECORD_BYTES);
        self.out.resize(len, 0);
        Ok(())
    }

    fn grow_ends(&mut self) -> Result<()> {
        if self.ends.len() > MAX_COLUMNS {
            return Err(Error::limit(
                &self.path,
                format!(
                    "line {}: a record has more than {MAX_COLUMNS} fields",
                    self.reader.line()
                ),
            ));
        }
        let len = (self.ends.len() * 2).min(MAX_COLUMNS + 1);
        self.ends.resize(len, 0);
        Ok(())
    }

    /// Handles one complete record (header or data row) ending on `line`.
    fn record(&mut self, line: u64, table: &mut Table) -> Result<()> {
        let n = self.ends_len;
        let result = match &self.header {
            None => self.read_header(line, table),
            Some(map) => {
                if n != map.len() {
                    Err(invalid(
                        &self.path,
                        format!(
                            "line {line}: expected {} fields as in the header, found {n}",
                            map.len()
                        ),
                    ))
                } else {
                    // One UTF-8 check per record; a field boundary inside a
                    // character means that field is not valid UTF-8 on its own.
                    let record = std::str::from_utf8(&self.out[..self.out_len]);
                    let mut start = 0;
                    let mut bad = None;
                    for (i, &end) in self.ends[..n].iter().enumerate() {
                        let field = match &record {
                            Ok(r) => r.get(start..end),
                            Err(e) if e.valid_up_to() >= end => {
                                std::str::from_utf8(&self.out[start..end]).ok()
                            }
                            Err(_) => None,
                        };
                        start = end;
                        match field {
                            Some(s) => table.columns[map[i]].push_text(s),
                            None => {
                                bad = Some(i);
                                break;
                            }
                        }
                    }
                    match bad {
                        None => {
                            self.rows += 1;
                            Ok(())
                        }
                        Some(i) => Err(invalid(
                            &self.path,
                            format!(
                                "line {line}, column {:?}: the value is not valid UTF-8",
                                table.columns[map[i]].name
                            ),
                        )),
                    }
                }
            }
        };
        self.out_len = 0;
        self.ends_len = 0;
        result
    }

    fn read_header(&mut self, line: u64, table: &mut Table) -> Result<()> {
        let n = self.ends_len;
        if n > MAX_COLUMNS {
            return Err(Error::limit(
                &self.path,
                format!("the header has {n} columns; at most {MAX_COLUMNS} are supported"),
            ));
        }
        let mut names = Vec::with_capacity(n);
        let mut start = 0;
        for &end in &self.ends[..n] {
            let name = std::str::from_utf8(&self.out[start..end]).map_err(|_| {
                invalid(
                    &self.path,
                    format!("line {line}: the header is not valid UTF-8"),
                )
            })?;
            names.push(name.to_string());
            start = end;
        }
        let names = unique_names(names);
        let mut map = Vec::with_capacity(n);
        for name in names {
            let idx = table.column(name, n, &self.path)?;
            table.columns[idx].set_nullable();
            map.push(idx);
        }
        self.header = Some(map);
        Ok(())
    }
}

/// Column names as pandas makes them: empty ones become `Unnamed: {i}`,
/// repeated ones get `.1`, `.2`, ... appended.
pub(crate) fn unique_names(raw: Vec<String>) -> Vec<String> {
    let mut taken = std::collections::HashSet::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    for (i, name) in raw.into_iter().enumerate() {
        let base = if name.is_empty() {
            format!("Unnamed: {i}")
        } else {
            name
        };
        let mut candidate = base.clone();
        let mut k = 1;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{base}.{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pandas_style_names() {
        let names = unique_names(vec!["a".into(), "".into(), "a".into(), "a".into()]);
        assert_eq!(names, ["a", "Unnamed: 1", "a.1", "a.2"]);
    }
}
