//! Tiny little-endian byte codec shared by the sketch formats.

use crate::{DriftError, Result};

pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new(magic: &[u8; 4], version: u8) -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(magic);
        buf.push(version);
        Writer { buf }
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn len_u32(&mut self, len: usize) -> Result<()> {
        let v = u32::try_from(len).map_err(|_| {
            DriftError::InvalidArgument(format!("length {len} does not fit the format"))
        })?;
        self.u32(v);
        Ok(())
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short() -> DriftError {
    DriftError::Decode("unexpected end of input".into())
}

impl<'a> Reader<'a> {
    /// Checks magic and version, positions after them.
    pub fn new(buf: &'a [u8], magic: &[u8; 4], version: u8) -> Result<Reader<'a>> {
        if buf.len() < 5 || &buf[..4] != magic {
            return Err(DriftError::Decode(format!(
                "bad magic, expected {:?}",
                String::from_utf8_lossy(magic)
            )));
        }
        if buf[4] != version {
            return Err(DriftError::Decode(format!(
                "unsupported version {} (expected {version})",
                buf[4]
            )));
        }
        Ok(Reader { buf, pos: 5 })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(short)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    /// A length prefix whose elements of `elem_size` bytes must fit the rest.
    pub fn len_u32(&mut self, elem_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        let need = n.checked_mul(elem_size).ok_or_else(short)?;
        if need > self.buf.len() - self.pos {
            return Err(short());
        }
        Ok(n)
    }

    pub fn finish(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(DriftError::Decode(format!(
                "{} trailing bytes",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }
}
