//! HPACK (RFC 7541) header block decoding for the load client: the static and dynamic tables,
//! integers, and Huffman-coded strings.
//!
//! Huffman decoding walks the canonical code of RFC 7541 Appendix B (codes of one length are
//! consecutive and ordered by symbol), rebuilt from the code lengths below; the first
//! decoder tried here rebuilt a hash map of the whole code for every string, which cost more
//! CPU per call than the rest of the client.

use std::collections::VecDeque;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The code length of each symbol (0-255, and 256 = EOS), RFC 7541 Appendix B.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// The canonical code, by length: the first code of each length, how many codes it has, and
/// the symbols in code order.
struct Canonical {
    first: [u32; 31],
    count: [u32; 31],
    /// Index into `symbols` of each length's first symbol.
    offset: [usize; 31],
    symbols: Vec<u16>,
}

fn canonical() -> &'static Canonical {
    static CODE: OnceLock<Canonical> = OnceLock::new();
    CODE.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..257).collect();
        symbols.sort_by_key(|&s| (CODE_LENGTHS[s as usize], s));
        let (mut first, mut count, mut offset) = ([0u32; 31], [0u32; 31], [0usize; 31]);
        for &s in &symbols {
            count[CODE_LENGTHS[s as usize] as usize] += 1;
        }
        let (mut code, mut at) = (0u32, 0usize);
        for len in 1..31 {
            first[len] = code;
            offset[len] = at;
            code = (code + count[len]) << 1;
            at += count[len] as usize;
        }
        Canonical {
            first,
            count,
            offset,
            symbols,
        }
    })
}

/// Decodes a Huffman-coded string; the padding must be at most 7 bits of ones (the EOS
/// prefix) and EOS itself must not appear (RFC 7541 section 5.2).
pub fn huffman(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let c = canonical();
    let (mut code, mut len, mut ones) = (0u32, 0usize, true);
    for byte in input {
        for bit in (0..8).rev() {
            let b = u32::from(byte >> bit & 1);
            code = code << 1 | b;
            len += 1;
            ones &= b == 1;
            ensure!(len <= 30, "invalid Huffman code");
            let k = code.wrapping_sub(c.first[len]);
            if code >= c.first[len] && k < c.count[len] {
                let sym = c.symbols[c.offset[len] + k as usize];
                ensure!(sym != 256, "EOS inside a Huffman string");
                out.push(sym as u8);
                (code, len, ones) = (0, 0, true);
            }
        }
    }
    ensure!(len <= 7 && ones, "invalid Huffman padding");
    Ok(())
}

/// The decoding side of one HTTP/2 connection's header compression.
pub struct Decoder {
    /// Newest first: name, value.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max: usize,
    /// The limit this end announced (SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max: 4096,
            limit: 4096,
        }
    }
}

impl Decoder {
    /// Decodes one whole header block, calling `field` with each name and value.
    pub fn decode(&mut self, block: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let mut at = 0;
        let mut first = true;
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                let i = integer(block, &mut at, 7)?;
                let (n, v) = self.entry(i)?;
                field(n, v);
            } else if b & 0xe0 == 0x20 {
                ensure!(first, "a table size update after a header field");
                let size = integer(block, &mut at, 5)?;
                ensure!(
                    size <= self.limit,
                    "table size {size} over the announced {}",
                    self.limit
                );
                self.max = size;
                self.evict(0);
                continue;
            } else {
                let (prefix, index) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let i = integer(block, &mut at, prefix)?;
                let name = if i == 0 {
                    string(block, &mut at)?
                } else {
                    self.entry(i)?.0.to_vec()
                };
                let value = string(block, &mut at)?;
                field(&name, &value);
                if index {
                    self.insert(name, value);
                }
            }
            first = false;
        }
        Ok(())
    }

    /// Static or dynamic table entry `i` (1-based).
    fn entry(&self, i: usize) -> Result<(&[u8], &[u8])> {
        match i {
            0 => bail!("header index 0"),
            1..=61 => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .table
                .get(i - 62)
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .with_context(|| format!("header index {i} past the dynamic table")),
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + 32;
        self.evict(size);
        if size <= self.max {
            self.size += size;
            self.table.push_front((name, value));
        }
    }

    /// Drops the oldest entries until `room` more bytes fit (all of them if it never does).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

/// An integer with an `n`-bit prefix at `*at` (RFC 7541 section 5.1).
fn integer(b: &[u8], at: &mut usize, n: u32) -> Result<usize> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*b.get(*at).context("header block ends in an integer")?) & max;
    *at += 1;
    if v < max {
        return Ok(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*at).context("header block ends in an integer")?;
        *at += 1;
        ensure!(shift <= 28, "integer too large");
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// A string literal at `*at`, Huffman-decoded when its H bit is set.
fn string(b: &[u8], at: &mut usize) -> Result<Vec<u8>> {
    let huff = b.get(*at).context("header block ends before a string")? & 0x80 != 0;
    let len = integer(b, at, 7)?;
    let raw = b
        .get(*at..*at + len)
        .context("header block ends inside a string")?;
    *at += len;
    if huff {
        let mut out = Vec::with_capacity(len * 8 / 5);
        huffman(raw, &mut out)?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode(d: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(&hex(block), |n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        })
        .unwrap();
        out
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn huffman_strings_of_rfc_7541_appendix_c4() {
        let mut out = Vec::new();
        huffman(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        huffman(&hex("a8eb 1064 9cbf"), &mut out).unwrap();
        assert_eq!(out, b"no-cache");
        out.clear();
        huffman(&hex("25a8 49e9 5bb8 e8b4 bf"), &mut out).unwrap();
        assert_eq!(out, b"custom-value");
    }

    #[test]
    fn bad_huffman_padding_is_refused() {
        let mut out = Vec::new();
        // '0' is 00000; padding with zeros instead of ones.
        assert!(huffman(&[0b0000_0000], &mut out).is_err());
        // A whole byte of padding (more than 7 bits).
        assert!(huffman(&[0b0000_0111, 0xff], &mut out).is_err());
        out.clear();
        huffman(&[0b0000_0111], &mut out).unwrap();
        assert_eq!(out, b"0");
    }

    #[test]
    fn the_response_sequence_of_rfc_7541_appendix_c6() {
        // Responses with Huffman coding and a 256-byte table: entries are evicted.
        let mut d = Decoder {
            max: 256,
            limit: 256,
            ..Decoder::default()
        };
        let first = decode(
            &mut d,
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        assert_eq!(
            first,
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        assert_eq!(d.size, 222);
        let second = decode(&mut d, "4883 640e ff c1 c0 bf");
        assert_eq!(
            second,
            pairs(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        assert_eq!(d.size, 222);
        let third = decode(
            &mut d,
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        );
        assert_eq!(
            third,
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(d.size, 215);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut d = Decoder::default();
        // Index 0, an index past the tables, a truncated string, a table size over the limit.
        for bad in ["80", "be", "4005 6162", "3fe2 1f"] {
            assert!(d.decode(&hex(bad), |_, _| {}).is_err(), "{bad}");
        }
    }
}
