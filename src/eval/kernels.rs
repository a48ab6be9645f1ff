//! Word-wide bitset kernels on the raw `u64` words of a [`Bits`].
//!
//! Bits past the length in the last word are kept at zero by every kernel,
//! so counts and comparisons can work on whole words.

use crate::store::Bits;

/// `dst &= src`, word by word.
pub fn and_assign(dst: &mut [u64], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d &= *s;
    }
}

/// `dst |= src`, word by word.
pub fn or_assign(dst: &mut [u64], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d |= *s;
    }
}

/// Complements every bit within the length.
pub fn not_assign(b: &mut Bits) {
    let len = b.len();
    let words = b.as_raw_mut_slice();
    for w in words.iter_mut() {
        *w = !*w;
    }
    clear_tail(words, len);
}

/// Zeroes the bits of the last word that lie past `len`.
pub fn clear_tail(words: &mut [u64], len: usize) {
    let rem = len % 64;
    if let (true, Some(last)) = (rem != 0, words.get_mut(len / 64)) {
        *last &= (1u64 << rem) - 1;
    }
}

/// Number of set bits.
pub fn count(words: &[u64]) -> u64 {
    words.iter().map(|w| u64::from(w.count_ones())).sum()
}

/// A bitset of `len` bits whose bit `r` is `f(r)`, built a word at a time.
pub fn from_predicate(len: usize, f: impl Fn(usize) -> bool) -> Bits {
    let mut out = Bits::repeat(false, len);
    for (w, word) in out.as_raw_mut_slice().iter_mut().enumerate() {
        let base = w * 64;
        let mut acc = 0u64;
        for bit in 0..64.min(len - base) {
            acc |= u64::from(f(base + bit)) << bit;
        }
        *word = acc;
    }
    out
}

/// The positions of the set bits, in order.
pub fn ones(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(i, &w)| {
        let mut w = w;
        std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let t = w.trailing_zeros();
            w &= w - 1;
            Some((i * 64) as u32 + t)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_keeps_the_tail_clear_and_ones_lists_positions() {
        let mut b = Bits::repeat(false, 70);
        b.set(3, true);
        b.set(69, true);
        not_assign(&mut b);
        assert_eq!(count(b.as_raw_slice()), 68);
        assert_eq!(
            b.as_raw_slice()[1] >> 6,
            0,
            "bits past the length stay zero"
        );
        let v: Vec<u32> = ones(b.as_raw_slice()).take(4).collect();
        assert_eq!(v, vec![0, 1, 2, 4]);
        let p = from_predicate(130, |r| r % 65 == 0);
        assert_eq!(ones(p.as_raw_slice()).collect::<Vec<_>>(), vec![0, 65]);
    }
}
