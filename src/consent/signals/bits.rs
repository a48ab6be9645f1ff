//! Bit-level reader and writer, base64url conversion and Fibonacci coding.
//!
//! All fields in IAB consent strings are big-endian with bits numbered left
//! to right; the first bit of the first base64url character is bit 0.

use super::error::{SignalError, SignalResult};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// How the encoder pads the bit string before base64url conversion.
///
/// Decoders accept both forms; they differ only in the trailing zero bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Pad with zero bits to a whole byte, then to a whole base64 character
    /// (the form written by the IAB reference libraries, e.g. `DBABMA`).
    #[default]
    Byte,
    /// Pad with zero bits to a multiple of 6 only (the form given in the GPP
    /// specification text, e.g. `DBABM`).
    Sextet,
}

const INVALID: u8 = 0xff;

const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Zero bytes kept after the data so that reads can load 8 bytes at once.
const SLACK: usize = 8;

/// Bits decoded from a base64url segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    /// Decodes a base64url string without padding. Trailing `=` characters
    /// are accepted and ignored.
    pub fn from_base64url(s: &str) -> SignalResult<Self> {
        let raw = s.trim_end_matches('=').as_bytes();
        let len = raw.len() * 6;
        let nbytes = len.div_ceil(8);
        let mut bytes = vec![0u8; nbytes + SLACK];
        let invalid = |i: usize| SignalError::InvalidBase64 {
            position: i,
            ch: s
                .get(i..)
                .and_then(|t| t.chars().next())
                .unwrap_or('\u{fffd}'),
        };
        let chunks = raw.chunks_exact(4);
        let rest = chunks.remainder();
        for (k, (c, out)) in chunks.zip(bytes.chunks_exact_mut(3)).enumerate() {
            let (a, b, cc, d) = (
                DECODE[usize::from(c[0])],
                DECODE[usize::from(c[1])],
                DECODE[usize::from(c[2])],
                DECODE[usize::from(c[3])],
            );
            if (a | b | cc | d) & 0xc0 != 0 {
                let j = c
                    .iter()
                    .position(|&x| DECODE[usize::from(x)] == INVALID)
                    .unwrap_or(0);
                return Err(invalid(k * 4 + j));
            }
            let v =
                (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(cc) << 6) | u32::from(d);
            out[0] = (v >> 16) as u8;
            out[1] = (v >> 8) as u8;
            out[2] = v as u8;
        }
        let base = raw.len() - rest.len();
        let mut pos = base / 4 * 3;
        let mut acc: u32 = 0;
        let mut nacc = 0u32;
        for (i, &c) in rest.iter().enumerate() {
            let v = DECODE[usize::from(c)];
            if v == INVALID {
                return Err(invalid(base + i));
            }
            acc = (acc << 6) | u32::from(v);
            nacc += 6;
            if nacc >= 8 {
                nacc -= 8;
                bytes[pos] = (acc >> nacc) as u8;
                pos += 1;
                acc &= (1 << nacc) - 1;
            }
        }
        if nacc > 0 {
            bytes[pos] = (acc << (8 - nacc)) as u8;
        }
        Ok(Self { bytes, len })
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader positioned at bit 0.
    pub fn reader(&self) -> BitReader<'_> {
        BitReader {
            data: &self.bytes,
            len: self.len,
            pos: 0,
        }
    }
}

/// Bounds-checked big-endian bit reader.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    len: usize,
    pos: usize,
}

impl BitReader<'_> {
    /// Current bit offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        self.len - self.pos
    }

    /// Loads 57 or more bits starting at `pos`, left-aligned in a `u64`.
    /// Relies on the zero slack after the data.
    #[inline]
    fn peek64(&self, pos: usize) -> u64 {
        let i = pos / 8;
        let word = match self
            .data
            .get(i..i + 8)
            .and_then(|x| <[u8; 8]>::try_from(x).ok())
        {
            Some(b) => u64::from_be_bytes(b),
            None => {
                let mut w = 0u64;
                for k in 0..8 {
                    w = (w << 8) | u64::from(self.data.get(i + k).copied().unwrap_or(0));
                }
                w
            }
        };
        word << (pos % 8)
    }

    fn truncated(&self, n: usize, field: &'static str) -> SignalError {
        SignalError::Truncated {
            field,
            offset: self.pos,
            needed: n,
            available: self.remaining(),
        }
    }

    /// Reads an unsigned integer of `n` bits (n <= 57).
    #[inline]
    pub fn read(&mut self, n: usize, field: &'static str) -> SignalResult<u64> {
        if n > 57 {
            return Err(SignalError::InvalidValue {
                field,
                offset: self.pos,
                value: n as u64,
                reason: "cannot read more than 57 bits at once",
            });
        }
        if self.remaining() < n {
            return Err(self.truncated(n, field));
        }
        if n == 0 {
            return Ok(0);
        }
        let v = self.peek64(self.pos) >> (64 - n);
        self.pos += n;
        Ok(v)
    }

    /// Reads one bit as a boolean (1 = true).
    pub fn read_bool(&mut self, field: &'static str) -> SignalResult<bool> {
        Ok(self.read(1, field)? == 1)
    }

    /// Reads a fixed-length bitfield of `n` bits and returns the 1-based ids
    /// of the set bits, ascending.
    pub fn read_id_bitfield(&mut self, n: usize, field: &'static str) -> SignalResult<Vec<u16>> {
        let mut out = Vec::with_capacity(self.count_ones(n));
        self.for_each_set_bit(n, field, |id| out.push(id as u16))?;
        Ok(out)
    }

    /// Number of set bits among the next `n` (0 when fewer remain).
    fn count_ones(&self, n: usize) -> usize {
        if self.remaining() < n {
            return 0;
        }
        let mut done = 0usize;
        let mut count = 0usize;
        while done < n {
            let take = (n - done).min(56);
            count += (self.peek64(self.pos + done) >> (64 - take)).count_ones() as usize;
            done += take;
        }
        count
    }

    fn for_each_set_bit(
        &mut self,
        n: usize,
        field: &'static str,
        mut f: impl FnMut(usize),
    ) -> SignalResult<()> {
        if self.remaining() < n {
            return Err(self.truncated(n, field));
        }
        let start = self.pos;
        let mut done = 0usize;
        while done < n {
            let take = (n - done).min(56);
            let mut word = self.peek64(start + done) >> (64 - take);
            while word != 0 {
                let k = 63 - word.leading_zeros() as usize; // bit index from the right
                f(done + (take - 1 - k) + 1);
                word &= !(1u64 << k);
            }
            done += take;
        }
        self.pos += n;
        Ok(())
    }

    /// Reads a Fibonacci-coded positive integer (terminated by `11`).
    pub fn read_fibonacci(&mut self, field: &'static str) -> SignalResult<u64> {
        let offset = self.pos;
        let (mut a, mut b) = (1u64, 2u64);
        let mut value = 0u64;
        let mut prev = false;
        let mut count = 0usize;
        loop {
            if self.remaining() == 0 {
                return Err(SignalError::Truncated {
                    field,
                    offset,
                    needed: count + 1,
                    available: count,
                });
            }
            let bit = self.read(1, field)? == 1;
            count += 1;
            if bit && prev {
                return Ok(value);
            }
            if count > 60 {
                return Err(SignalError::InvalidValue {
                    field,
                    offset,
                    value,
                    reason: "Fibonacci code too long",
                });
            }
            if bit {
                value += a;
            }
            prev = bit;
            let next = a + b;
            a = b;
            b = next;
        }
    }
}

/// Big-endian bit writer.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    len: usize,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of bits written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push_bit(&mut self, bit: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (7 - self.len % 8);
        }
        self.len += 1;
    }

    /// Writes `value` in `n` bits, failing when it does not fit.
    pub fn write(&mut self, value: u64, n: usize, field: &'static str) -> SignalResult<()> {
        if n < 64 && value >> n != 0 {
            return Err(SignalError::Encode {
                field,
                reason: format!("value {value} does not fit in {n} bits"),
            });
        }
        for i in (0..n).rev() {
            self.push_bit((value >> i) & 1 == 1);
        }
        Ok(())
    }

    /// Writes one bit.
    pub fn write_bool(&mut self, v: bool) {
        self.push_bit(v);
    }

    /// Writes a bitfield of `n` bits with the given 1-based ids set.
    /// Ids must be ascending, unique and in `1..=n`.
    pub fn write_id_bitfield<I>(
        &mut self,
        n: usize,
        ids: I,
        field: &'static str,
    ) -> SignalResult<()>
    where
        I: IntoIterator<Item = u16>,
    {
        let mut next = 1usize;
        for id in ids {
            let id = usize::from(id);
            if id < next || id > n {
                return Err(SignalError::Encode {
                    field,
                    reason: format!("id {id} out of range 1..={n} or not ascending/unique"),
                });
            }
            for _ in next..id {
                self.push_bit(false);
            }
            self.push_bit(true);
            next = id + 1;
        }
        for _ in next..=n {
            self.push_bit(false);
        }
        Ok(())
    }

    /// Writes a positive integer in Fibonacci coding.
    pub fn write_fibonacci(&mut self, value: u64, field: &'static str) -> SignalResult<()> {
        if value == 0 {
            return Err(SignalError::Encode {
                field,
                reason: "Fibonacci coding cannot represent 0".into(),
            });
        }
        let mut fibs = vec![1u64, 2];
        while let Some(&last) = fibs.last() {
            let next = last + fibs[fibs.len() - 2];
            if next > value {
                break;
            }
            fibs.push(next);
        }
        while fibs.len() > 1 && *fibs.last().unwrap_or(&0) > value {
            fibs.pop();
        }
        let mut bits = vec![false; fibs.len()];
        let mut rest = value;
        for i in (0..fibs.len()).rev() {
            if fibs[i] <= rest {
                bits[i] = true;
                rest -= fibs[i];
            }
        }
        // Trim leading unused positions beyond the highest set bit.
        while bits.len() > 1 && !bits[bits.len() - 1] {
            bits.pop();
        }
        for b in bits {
            self.push_bit(b);
        }
        self.push_bit(true);
        Ok(())
    }

    /// Converts the bits to base64url with the given padding.
    pub fn to_base64url(&self, padding: Padding) -> String {
        let total = match padding {
            Padding::Byte => (self.bytes.len() * 8).div_ceil(6) * 6,
            Padding::Sextet => self.len.div_ceil(6) * 6,
        };
        let mut out = String::with_capacity(total / 6);
        let mut pos = 0;
        while pos < total {
            let mut v = 0u8;
            for k in 0..6 {
                let p = pos + k;
                let bit = p < self.len && (self.bytes[p / 8] >> (7 - p % 8)) & 1 == 1;
                v = (v << 1) | u8::from(bit);
            }
            out.push(char::from(ALPHABET[usize::from(v)]));
            pos += 6;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_reader() {
        let bits = Bits::from_base64url("DBABMA").unwrap();
        assert_eq!(bits.len(), 36);
        let mut r = bits.reader();
        assert_eq!(r.read(6, "Type").unwrap(), 3);
        assert_eq!(r.read(6, "Version").unwrap(), 1);
        assert_eq!(r.read(12, "Count").unwrap(), 1);
        assert!(!r.read_bool("Group").unwrap());
        assert_eq!(r.read_fibonacci("Id").unwrap(), 2);
        let err = r.read(9, "X").unwrap_err();
        assert_eq!(
            err,
            SignalError::Truncated {
                field: "X",
                offset: 28,
                needed: 9,
                available: 8
            }
        );
    }

    #[test]
    fn invalid_base64_reports_position() {
        let err = Bits::from_base64url("AB+C").unwrap_err();
        assert_eq!(
            err,
            SignalError::InvalidBase64 {
                position: 2,
                ch: '+'
            }
        );
        assert!(Bits::from_base64url("cAAAAAAAITg=").is_ok());
    }

    #[test]
    fn fibonacci_table_from_spec() {
        // Values 1..=7 and their code words from the GPP specification.
        let table = [
            (1, "11"),
            (2, "011"),
            (3, "0011"),
            (4, "1011"),
            (5, "00011"),
            (6, "10011"),
            (7, "01011"),
        ];
        for (v, code) in table {
            let mut w = BitWriter::new();
            w.write_fibonacci(v, "v").unwrap();
            let written: String = (0..w.len())
                .map(|p| {
                    if (w.bytes[p / 8] >> (7 - p % 8)) & 1 == 1 {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            assert_eq!(written, code, "value {v}");
            let bits = Bits {
                bytes: w.bytes.clone(),
                len: w.len,
            };
            assert_eq!(bits.reader().read_fibonacci("v").unwrap(), v);
        }
        for v in 1..2000u64 {
            let mut w = BitWriter::new();
            w.write_fibonacci(v, "v").unwrap();
            let bits = Bits {
                bytes: w.bytes.clone(),
                len: w.len,
            };
            assert_eq!(bits.reader().read_fibonacci("v").unwrap(), v);
        }
    }

    #[test]
    fn writer_padding_forms() {
        let mut w = BitWriter::new();
        for (v, n) in [(3u64, 6usize), (1, 6), (1, 12), (0, 1)] {
            w.write(v, n, "f").unwrap();
        }
        w.write_fibonacci(2, "id").unwrap();
        assert_eq!(w.to_base64url(Padding::Sextet), "DBABM");
        assert_eq!(w.to_base64url(Padding::Byte), "DBABMA");
        assert!(w.write(4, 2, "small").is_err());
    }
}
