//! Bit-sliced indexes over signed 64-bit values.

use super::Bits;

/// A bit-sliced index (O'Neil and Quass) over signed 64-bit values.
///
/// A row's value `v` is stored as the unsigned offset `v - base`; slice `i`
/// holds bit `i` of every row's offset. Rows without a value hold offset 0
/// (callers AND the column's presence bitmap in). The slices cover
/// `base ..= base + 2^width - 1`: for an integer with declared bounds that is
/// fixed when the store is made; otherwise (timestamps, unbounded integers)
/// it follows the observed values, growing on insert: a slice is added for a
/// larger value, and a smaller value moves the base down (with slack, so
/// that repeated moves stay rare) and re-encodes every row.
#[derive(Clone, Debug, Default)]
pub struct Bsi {
    base: i64,
    /// Slices, least significant first.
    slices: Vec<Bits>,
    /// Has any value been encoded yet (for observed ranges)?
    seeded: bool,
}

impl Bsi {
    /// An index with a fixed range `lo..=hi`, or an observed one if `None`.
    pub(super) fn new(bounds: Option<(i64, i64)>) -> Bsi {
        match bounds {
            Some((lo, hi)) => {
                let span = (i128::from(hi) - i128::from(lo)).max(0) as u128;
                Bsi {
                    base: lo,
                    slices: Vec::new(),
                    seeded: true,
                }
                .with_width(bits_for(span))
            }
            None => Bsi::default(),
        }
    }

    pub(super) fn with_width(mut self, width: u32) -> Bsi {
        self.slices = vec![Bits::new(); width as usize];
        self
    }

    /// The smallest value the slices can hold.
    pub fn base(&self) -> i64 {
        self.base
    }

    /// Number of slices.
    pub fn width(&self) -> u32 {
        self.slices.len() as u32
    }

    /// The largest offset the slices can hold.
    pub fn max_offset(&self) -> u64 {
        match self.width() {
            64 => u64::MAX,
            w => (1u64 << w) - 1,
        }
    }

    /// The slices' raw words, least significant slice first.
    pub fn slices(&self) -> impl Iterator<Item = &[u64]> + '_ {
        self.slices.iter().map(|s| s.as_raw_slice())
    }

    /// The slice for bit `i` of the offset.
    pub fn slice(&self, i: u32) -> &[u64] {
        self.slices[i as usize].as_raw_slice()
    }

    /// Bytes held by the slices.
    pub fn bytes(&self) -> usize {
        self.slices.iter().map(|s| s.as_raw_slice().len() * 8).sum()
    }

    fn fits(&self, v: i64) -> bool {
        self.seeded && v >= self.base && (v.wrapping_sub(self.base) as u64) <= self.max_offset()
    }

    /// Has a value been encoded yet (always, for a fixed range)?
    pub(super) fn seeded(&self) -> bool {
        self.seeded
    }

    /// An index from its parts (as read back from a snapshot); every slice
    /// must cover the same rows.
    pub(super) fn from_parts(base: i64, seeded: bool, slices: Vec<super::Bits>) -> Bsi {
        Bsi {
            base,
            slices,
            seeded,
        }
    }

    pub(super) fn push_row(&mut self) {
        for s in &mut self.slices {
            s.push(false);
        }
    }

    fn write(&mut self, row: usize, offset: u64) {
        for (i, s) in self.slices.iter_mut().enumerate() {
            s.set(row, (offset >> i) & 1 == 1);
        }
    }

    /// Stores `v` for `row`, growing the covered range first if needed.
    /// `others` yields every other row's present value, for a re-encoding.
    pub(super) fn set(
        &mut self,
        row: usize,
        v: i64,
        len: usize,
        others: impl Fn() -> Vec<(usize, i64)>,
    ) {
        if !self.fits(v) {
            self.grow(v, len, others);
        }
        self.write(row, v.wrapping_sub(self.base) as u64);
    }

    pub(super) fn clear(&mut self, row: usize) {
        self.write(row, 0);
    }

    fn grow(&mut self, v: i64, len: usize, others: impl Fn() -> Vec<(usize, i64)>) {
        let (seeded, base, width) = (self.seeded, self.base, self.width());
        let (new_base, new_width) = next_range(seeded, base, width, v);
        self.seeded = true;
        self.base = new_base;
        if !seeded {
            return;
        }
        if new_base != base {
            self.slices = vec![Bits::repeat(false, len); new_width as usize];
            for (r, x) in others() {
                self.write(r, x.wrapping_sub(self.base) as u64);
            }
        } else {
            while self.width() < new_width {
                self.slices.push(Bits::repeat(false, len));
            }
        }
    }

    /// Appends the rows `len0..len0 + codes.len()`, each holding its code
    /// when its `verified` is not [`super::MISSING`], with the same result
    /// as pushing the rows and setting their values one by one in row order:
    /// the covered range takes the same steps, and the rows already indexed
    /// are re-encoded once (from `old`, their present values) if the base
    /// moves. Slices are written a word at a time.
    pub(super) fn extend(
        &mut self,
        len0: usize,
        codes: &[i64],
        verified: &[i64],
        old: impl Fn() -> Vec<(usize, i64)>,
    ) {
        let (seeded0, base0, width0) = (self.seeded, self.base, self.width());
        let (mut seeded, mut base, mut width) = (seeded0, base0, width0);
        let present = || {
            codes
                .iter()
                .zip(verified)
                .filter(|(_, v)| **v != super::MISSING)
        };
        for (&c, _) in present() {
            let max = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            if !(seeded && c >= base && (c.wrapping_sub(base) as u64) <= max) {
                let (b, w) = next_range(seeded, base, width, c);
                if seeded {
                    width = w;
                }
                (seeded, base) = (true, b);
            }
        }
        let len = len0 + codes.len();
        self.seeded = seeded;
        self.base = base;
        if seeded0 && base != base0 {
            self.slices = vec![Bits::repeat(false, len); width as usize];
            for (r, x) in old() {
                self.write(r, x.wrapping_sub(base) as u64);
            }
        } else {
            for s in &mut self.slices {
                s.resize(len, false);
            }
            while self.width() < width {
                self.slices.push(Bits::repeat(false, len));
            }
        }
        for (k, (&c, &v)) in codes.iter().zip(verified).enumerate() {
            if v == super::MISSING {
                continue;
            }
            let (r, mut off) = (len0 + k, c.wrapping_sub(base) as u64);
            while off != 0 {
                let i = off.trailing_zeros() as usize;
                self.slices[i].as_raw_mut_slice()[r / 64] |= 1 << (r % 64);
                off &= off - 1;
            }
        }
    }
}

/// The base and width an index covering `base` with `width` slices moves
/// to for a value `v` it does not cover (an unseeded index takes `v` as its
/// base and keeps its width). A value below the base moves the base down
/// past it by as much again as the current span, so that values arriving
/// in decreasing order cost few re-encodings.
fn next_range(seeded: bool, base: i64, width: u32, v: i64) -> (i64, u32) {
    if !seeded {
        return (v, width);
    }
    let max = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let top = i128::from(base) + i128::from(max);
    let mut hi = top.max(i128::from(v));
    let mut lo = i128::from(base);
    if i128::from(v) < lo {
        let span = hi - lo + 1;
        lo = (i128::from(v) - span).max(i128::from(i64::MIN));
        hi = hi.max(lo);
    }
    (lo as i64, bits_for((hi - lo) as u128).max(width))
}

/// Number of bits needed to hold `span` (0 for 0).
fn bits_for(span: u128) -> u32 {
    (128 - span.leading_zeros()).min(64)
}
