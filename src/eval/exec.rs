//! The chunked, fused executor: the whole plan runs over one block of
//! [`CHUNK`] words at a time, so every input word is read once, registers
//! stay in L1/L2, and no full-size temporary is made. The result block is
//! counted and written out in the same pass.
//!
//! Everything here is `#[inline(always)]` so that [`super::cpu`] can compile
//! copies of the block loop with wider instruction sets enabled.

use super::plan::{Mode, Op, Plan, RangeTest};

/// Words per block: 2048 words (16 KiB, 131 072 rows) per register.
pub const CHUNK: usize = 2048;

/// A register: one block, padded so that registers do not sit a multiple
/// of 4 KiB apart (loads and stores at such distances falsely depend on
/// each other on x86).
type Block = [u64; CHUNK + 8];

/// Per-thread working memory: the plan's registers and the range state.
/// Each block is allocated on the heap directly: a block built as a value
/// first would pass through the stack (16 KiB at a time in a debug build),
/// too much for a host thread with a small stack.
pub(crate) struct Scratch {
    regs: Vec<Box<Block>>,
    state: [Box<Block>; 4],
}

/// A zeroed block, made on the heap.
fn heap_block() -> Box<Block> {
    vec![0u64; CHUNK + 8]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("a vector of CHUNK + 8 words"))
}

impl Scratch {
    /// Number of registers.
    pub(crate) fn regs(&self) -> usize {
        self.regs.len()
    }

    pub(crate) fn new(regs: usize) -> Scratch {
        Scratch {
            regs: (0..regs.max(1)).map(|_| heap_block()).collect(),
            state: [heap_block(), heap_block(), heap_block(), heap_block()],
        }
    }
}

#[inline(always)]
fn combine(dst: &mut [u64], src: &[u64], neg: bool, mode: Mode) {
    let src = &src[..dst.len()];
    match (mode, neg) {
        (Mode::Set, false) => dst.copy_from_slice(src),
        (Mode::Set, true) => dst.iter_mut().zip(src).for_each(|(d, s)| *d = !*s),
        (Mode::And, false) => dst.iter_mut().zip(src).for_each(|(d, s)| *d &= *s),
        (Mode::And, true) => dst.iter_mut().zip(src).for_each(|(d, s)| *d &= !*s),
        (Mode::Or, false) => dst.iter_mut().zip(src).for_each(|(d, s)| *d |= *s),
        (Mode::Or, true) => dst.iter_mut().zip(src).for_each(|(d, s)| *d |= !*s),
    }
}

/// One comparison pass over the slices, most significant first (O'Neil and
/// Quass): `ge` tracks `offset >= a` as (equal so far, greater), `le` tracks
/// `offset <= b` as (equal so far, less); both in the same pass.
#[inline(always)]
fn range(
    dst: &mut [u64],
    t: &RangeTest<'_>,
    w0: usize,
    neg: bool,
    mode: Mode,
    st: &mut [Box<Block>; 4],
) {
    let n = dst.len();
    let [eq_a, gt, eq_b, lt] = st;
    let (eq_a, gt, eq_b, lt) = (&mut eq_a[..n], &mut gt[..n], &mut eq_b[..n], &mut lt[..n]);
    eq_a.fill(!0);
    gt.fill(0);
    eq_b.fill(!0);
    lt.fill(0);
    let a = t.ge.unwrap_or(0);
    let b = t.le.unwrap_or(u64::MAX);
    let stop_a = t.ge.map_or(64, u64::trailing_zeros);
    let stop_b = t.le.map_or(64, u64::trailing_ones);
    let lowest = t.lowest_slice() as usize;
    for i in (lowest..t.slices.len()).rev() {
        let s = &t.slices[i][w0..w0 + n];
        let ma = if (a >> i) & 1 == 1 { !0u64 } else { 0 };
        let mb = if (b >> i) & 1 == 1 { !0u64 } else { 0 };
        let on_a = (i as u32) >= stop_a;
        let on_b = (i as u32) >= stop_b;
        match (on_a, on_b) {
            (true, true) => {
                for k in 0..n {
                    let x = s[k];
                    gt[k] |= eq_a[k] & x & !ma;
                    eq_a[k] &= !(x ^ ma);
                    lt[k] |= eq_b[k] & !x & mb;
                    eq_b[k] &= !(x ^ mb);
                }
            }
            (true, false) => {
                for k in 0..n {
                    let x = s[k];
                    gt[k] |= eq_a[k] & x & !ma;
                    eq_a[k] &= !(x ^ ma);
                }
            }
            (false, true) => {
                for k in 0..n {
                    let x = s[k];
                    lt[k] |= eq_b[k] & !x & mb;
                    eq_b[k] &= !(x ^ mb);
                }
            }
            (false, false) => {}
        }
    }
    // The result is (gt | eq_a) & (lt | eq_b), complemented if negated.
    let flip = if neg { !0u64 } else { 0 };
    let res = |k: usize| ((gt[k] | eq_a[k]) & (lt[k] | eq_b[k])) ^ flip;
    match mode {
        Mode::Set => (0..n).for_each(|k| dst[k] = res(k)),
        Mode::And => (0..n).for_each(|k| dst[k] &= res(k)),
        Mode::Or => (0..n).for_each(|k| dst[k] |= res(k)),
    }
}

/// Where the result words of [`run`] go, block by block in order.
pub(crate) trait Sink {
    /// Stores the result words of the block at offset `off` (in words from
    /// the start of the run).
    fn put(&mut self, off: usize, words: &[u64]);
}

/// Into a slice exactly as long as the run.
impl Sink for [u64] {
    #[inline(always)]
    fn put(&mut self, off: usize, words: &[u64]) {
        self[off..off + words.len()].copy_from_slice(words);
    }
}

/// Appended to a vector (which then needs no zeroing first).
impl Sink for Vec<u64> {
    #[inline(always)]
    fn put(&mut self, _off: usize, words: &[u64]) {
        self.extend_from_slice(words);
    }
}

/// Runs the plan over words `first .. first + words`, handing the result
/// words to `out` (bits past the plan's length cleared) and returning the
/// number of set bits.
#[inline(always)]
pub(crate) fn run<S: Sink + ?Sized>(
    plan: &Plan<'_>,
    sc: &mut Scratch,
    first: usize,
    words: usize,
    out: &mut S,
) -> u64 {
    let total_words = plan.words();
    let tail = plan.len % 64;
    let mut count = 0u64;
    let mut off = 0;
    while off < words {
        let n = CHUNK.min(words - off);
        let w0 = first + off;
        let mut pc = 0;
        while pc < plan.code.len() {
            match plan.code[pc] {
                Op::Fill { dst, ones } => sc.regs[dst][..n].fill(if ones { !0 } else { 0 }),
                Op::Bits {
                    dst,
                    src,
                    neg,
                    mode,
                } => combine(&mut sc.regs[dst][..n], &plan.operands[src][w0..], neg, mode),
                Op::Range { dst, r, neg, mode } => range(
                    &mut sc.regs[dst][..n],
                    &plan.ranges[r],
                    w0,
                    neg,
                    mode,
                    &mut sc.state,
                ),
                Op::Reg { dst, src, mode } => {
                    let (lo, hi) = sc.regs.split_at_mut(src);
                    combine(&mut lo[dst][..n], &hi[0][..n], false, mode);
                }
                Op::SkipIfNone { reg, to } => {
                    if sc.regs[reg][..n].iter().fold(0, |a, w| a | w) == 0 {
                        pc = to;
                        continue;
                    }
                }
                Op::SkipIfAll { reg, to } => {
                    if sc.regs[reg][..n].iter().fold(!0, |a, w| a & w) == !0 {
                        pc = to;
                        continue;
                    }
                }
            }
            pc += 1;
        }
        let reg = &mut sc.regs[0][..n];
        if tail != 0 && w0 + n == total_words {
            reg[n - 1] &= (1u64 << tail) - 1;
        }
        count += reg.iter().map(|r| u64::from(r.count_ones())).sum::<u64>();
        out.put(off, reg);
        off += n;
    }
    count
}
