//! Splitting one fuzz input into the several values an entry point needs.
//!
//! Text fields are separated by the byte `0xFF`, which never occurs in UTF-8, so every valid
//! string (including NUL, `/`, `\` and newlines) can appear inside a field. Invalid UTF-8 is
//! replaced by U+FFFD, as a gRPC string field can only carry valid UTF-8 anyway.

/// The byte separating the text fields of an input (never part of UTF-8).
pub const SEP: u8 = 0xFF;

/// A cursor over a fuzz input.
pub(crate) struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next byte (0 once the input is used up).
    pub(crate) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next 8 bytes as a little-endian integer (missing bytes are 0).
    pub(crate) fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.rest.len().min(8);
        b[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        u64::from_le_bytes(b)
    }

    /// The next text field: everything up to the next [`SEP`] (or the end).
    pub(crate) fn text(&mut self) -> String {
        let (field, rest) = match self.rest.iter().position(|&b| b == SEP) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        String::from_utf8_lossy(field).into_owned()
    }

    /// Everything left, as bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Text fields joined with [`SEP`]: the inverse of reading them with [`Input::text`] (for
/// building seeds and structured test inputs).
pub fn join_fields<S: AsRef<[u8]>>(fields: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(f.as_ref());
    }
    out
}
