//! The chunked, fused executor: the whole plan runs over one block of
//! [`CHUNK`] words at a time, so every input word is read once, registers
//! stay in L1/L2, and no full-size temporary is made. The result block is
//! counted and written out in the same pass.
//!
//! Everything here is `#[inline(always)]` so that [`super::cpu`] can compile
//! copies of the block loop with wider instruction sets enabled.

use super::plan::{Mode, Op, Plan, RangeTest};

/// Words per block: 512 words (4 KiB, 32 768 rows) per register.
pub const CHUNK: usize = 512;

/// A register: one block, padded so that registers do not sit a multiple
/// of 4 KiB apart (loads and stores at such distances falsely depend on
/// each other on x86).
type Block = [u64; CHUNK + 8];

/// Per-thread working memory: the plan's registers.
pub(crate) struct Scratch {
    regs: Vec<Block>,
}

impl Scratch {
    pub(crate) fn new(regs: usize) -> Scratch {
        Scratch {
            regs: vec![[0; CHUNK + 8]; regs.max(1)],
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

/// Words per group in the range kernel: its state (4 x `GROUP` words)
/// stays in vector registers while every slice is read for the group.
const GROUP: usize = 8;

/// Per-slice constants of a range test: the bits of the two bounds and
/// whether each side still needs this slice, as all-ones or all-zero words.
#[derive(Clone, Copy, Default)]
struct SliceMasks {
    ma: u64,
    mb: u64,
    on_a: u64,
    on_b: u64,
}

/// The comparison for `W` words at `k` (O'Neil and Quass): over the slices,
/// most significant first, `ge` tracks `offset >= a` as (equal so far,
/// greater) and `le` tracks `offset <= b` as (equal so far, less), both in
/// the same pass. Returns `(gt | eq_a) & (lt | eq_b)`.
#[inline(always)]
fn range_group<const W: usize>(
    slices: &[&[u64]],
    masks: &[SliceMasks],
    lowest: usize,
    k: usize,
) -> [u64; W] {
    let (mut eq_a, mut gt, mut eq_b, mut lt) = ([!0u64; W], [0u64; W], [!0u64; W], [0u64; W]);
    for i in (lowest..slices.len()).rev() {
        let s: &[u64; W] = slices[i][k..k + W].try_into().expect("W words");
        let m = masks[i];
        for j in 0..W {
            let x = s[j];
            gt[j] |= eq_a[j] & x & !m.ma & m.on_a;
            eq_a[j] &= !(x ^ m.ma) | !m.on_a;
            lt[j] |= eq_b[j] & !x & m.mb & m.on_b;
            eq_b[j] &= !(x ^ m.mb) | !m.on_b;
        }
    }
    let mut out = [0u64; W];
    for j in 0..W {
        out[j] = (gt[j] | eq_a[j]) & (lt[j] | eq_b[j]);
    }
    out
}

/// A range test over the block at word `w0`, combined into `dst`.
#[inline(always)]
fn range(dst: &mut [u64], t: &RangeTest<'_>, w0: usize, neg: bool, mode: Mode) {
    let n = dst.len();
    let width = t.slices.len();
    let a = t.ge.unwrap_or(0);
    let b = t.le.unwrap_or(u64::MAX);
    let stop_a = t.ge.map_or(64, u64::trailing_zeros) as usize;
    let stop_b = t.le.map_or(64, u64::trailing_ones) as usize;
    let lowest = t.lowest_slice() as usize;
    let all = |c: bool| if c { !0u64 } else { 0 };
    let mut masks = [SliceMasks::default(); 64];
    let mut slices: [&[u64]; 64] = [&[]; 64];
    for i in lowest..width {
        masks[i] = SliceMasks {
            ma: all((a >> i) & 1 == 1),
            mb: all((b >> i) & 1 == 1),
            on_a: all(i >= stop_a),
            on_b: all(i >= stop_b),
        };
        slices[i] = &t.slices[i][w0..w0 + n];
    }
    let (slices, masks) = (&slices[..width], &masks[..width]);
    let flip = all(neg);
    let mut put = |k: usize, r: u64| match mode {
        Mode::Set => dst[k] = r ^ flip,
        Mode::And => dst[k] &= r ^ flip,
        Mode::Or => dst[k] |= r ^ flip,
    };
    let mut k = 0;
    while k + GROUP <= n {
        let r = range_group::<GROUP>(slices, masks, lowest, k);
        for (j, r) in r.into_iter().enumerate() {
            put(k + j, r);
        }
        k += GROUP;
    }
    while k < n {
        let [r] = range_group::<1>(slices, masks, lowest, k);
        put(k, r);
        k += 1;
    }
}

/// Runs the plan over words `first .. first + out.len()`, writing the
/// result words to `out` (bits past the plan's length cleared) and
/// returning the number of set bits.
#[inline(always)]
pub(crate) fn run(plan: &Plan<'_>, sc: &mut Scratch, first: usize, out: &mut [u64]) -> u64 {
    let total_words = plan.words();
    let tail = plan.len % 64;
    let mut count = 0u64;
    let mut off = 0;
    while off < out.len() {
        let n = CHUNK.min(out.len() - off);
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
                Op::Range { dst, r, neg, mode } => {
                    range(&mut sc.regs[dst][..n], &plan.ranges[r], w0, neg, mode)
                }
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
        let dst = &mut out[off..off + n];
        let reg = &mut sc.regs[0][..n];
        if tail != 0 && w0 + n == total_words {
            reg[n - 1] &= (1u64 << tail) - 1;
        }
        let mut c = 0u64;
        for (d, r) in dst.iter_mut().zip(reg.iter()) {
            *d = *r;
            c += u64::from(r.count_ones());
        }
        count += c;
        off += n;
    }
    count
}
