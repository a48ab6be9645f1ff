//! Run-time CPU feature dispatch for the block loop of `super::exec`.
//!
//! The default x86-64 target has neither POPCNT nor AVX2, so a plain
//! `cargo build --release` would count bits with shifts and masks and
//! combine words 128 bits at a time. This module compiles a second copy of
//! the block loop with `avx2,popcnt` enabled and picks it at run time when
//! the CPU has both. The portable copy is always available; a path can be
//! forced (for tests and measurements) through [`ExecOptions`] or the
//! `PRIVSEG_KERNEL` environment variable (`portable` or `avx2`).
//!
//! This is the only module of the crate with `unsafe` code: calling a
//! `#[target_feature]` function needs it.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::EvalError;
use super::exec::{self, CHUNK, Scratch, Sink};
use super::plan::Plan;

/// A compiled copy of the block loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelPath {
    /// The baseline instruction set of the target.
    Portable,
    /// x86-64 with AVX2 and POPCNT.
    Avx2,
}

impl KernelPath {
    /// Every path, whether or not this CPU can run it.
    pub const ALL: [KernelPath; 2] = [KernelPath::Portable, KernelPath::Avx2];

    /// Can this CPU run the path?
    pub fn is_available(self) -> bool {
        match self {
            KernelPath::Portable => true,
            KernelPath::Avx2 => avx2_available(),
        }
    }

    /// The path's name.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2+popcnt",
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}

/// The path used when none is forced: `PRIVSEG_KERNEL` if set to an
/// available path, else the widest the CPU supports.
pub fn default_path() -> KernelPath {
    static PATH: OnceLock<KernelPath> = OnceLock::new();
    *PATH.get_or_init(|| {
        let forced = match std::env::var("PRIVSEG_KERNEL").as_deref() {
            Ok("portable") => Some(KernelPath::Portable),
            Ok("avx2") => Some(KernelPath::Avx2),
            _ => None,
        };
        forced
            .filter(|p| p.is_available())
            .unwrap_or(if avx2_available() {
                KernelPath::Avx2
            } else {
                KernelPath::Portable
            })
    })
}

/// The CPU features the default path uses, e.g. `"avx2,popcnt"` or
/// `"portable"`.
pub fn cpu_features() -> &'static str {
    match default_path() {
        KernelPath::Portable => "portable",
        KernelPath::Avx2 => "avx2,popcnt",
    }
}

/// How to execute a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Force a kernel path (falls back to the portable one if this CPU
    /// lacks it); `None` for [`default_path`].
    pub path: Option<KernelPath>,
    /// Number of threads: `None` (or `Some(0)`) lets the executor choose,
    /// `Some(n)` asks for `n` (at most one per block).
    ///
    /// The executor uses several threads only when the plan reads enough
    /// input ([`PAR_MIN_INPUT_WORDS_PER_THREAD`] words per thread). On the
    /// 2-core machine at 10 million subjects, a second thread cut plans
    /// reading 20 to 80 bitsets by 10-45% when the other core was free,
    /// made no difference or cost up to 35% while other processes kept it
    /// busy, and doubled the time of plans reading 2 or 3 bitsets (0.1 ms
    /// jobs), which therefore stay on one thread.
    pub threads: Option<usize>,
}

/// Input words each thread must read before extra threads pay: starting
/// and joining a scoped thread costs tens of microseconds, about the time
/// to stream 1 MiB; this asks for 16 MiB of input per thread.
pub const PAR_MIN_INPUT_WORDS_PER_THREAD: usize = 2 << 20;

impl ExecOptions {
    /// The path these options resolve to on this CPU.
    pub fn resolved_path(&self) -> KernelPath {
        self.path
            .filter(|p| p.is_available())
            .unwrap_or_else(default_path)
    }

    /// The number of threads these options resolve to for a plan of
    /// `words` words per bitset reading `inputs` bitsets.
    pub fn resolved_threads(&self, words: usize, inputs: usize) -> usize {
        let blocks = words.div_ceil(CHUNK).max(1);
        let t = match self.threads {
            Some(t @ 1..) => t,
            None | Some(0) => {
                cores().min(words.saturating_mul(inputs) / PAR_MIN_INPUT_WORDS_PER_THREAD)
            }
        };
        t.clamp(1, blocks)
    }
}

/// The number of cores the process may use, asked once: the standard
/// library's answer reads the scheduler affinity and, on Linux, the
/// cgroup quota files, which costs more than executing a small plan.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Registers a thread keeps between executions (a plan needing more gets
/// fresh ones, not kept).
const KEPT_REGS: usize = 16;

thread_local! {
    /// The calling thread's working memory from its last execution: every
    /// register is written before it is read in each block (see
    /// `plan::gen_code`), so what it holds from before does not matter.
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Runs `f` with working memory for `regs` registers, reusing the calling
/// thread's from its last execution when large enough.
fn with_scratch<R>(regs: usize, f: impl FnOnce(&mut Scratch) -> R) -> R {
    let kept = SCRATCH
        .try_with(|c| c.borrow_mut().take())
        .ok()
        .flatten()
        .filter(|s| s.regs() >= regs.max(1));
    let mut sc = kept.unwrap_or_else(|| Scratch::new(regs));
    let out = f(&mut sc);
    if sc.regs() <= KEPT_REGS {
        let _ = SCRATCH.try_with(|c| *c.borrow_mut() = Some(sc));
    }
    out
}

fn run_blocks<S: Sink + ?Sized>(
    path: KernelPath,
    plan: &Plan<'_>,
    first: usize,
    words: usize,
    out: &mut S,
) -> u64 {
    with_scratch(plan.regs, |sc| match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 if avx2_available() => {
            // SAFETY: `run_avx2` needs AVX2 and POPCNT, and the guard has
            // just checked at run time that this CPU has both.
            unsafe { run_avx2(plan, sc, first, words, out) }
        }
        _ => exec::run(plan, sc, first, words, out),
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn run_avx2<S: Sink + ?Sized>(
    plan: &Plan<'_>,
    sc: &mut Scratch,
    first: usize,
    words: usize,
    out: &mut S,
) -> u64 {
    exec::run(plan, sc, first, words, out)
}

/// Executes a plan: the result words (bits past the length zero) and their
/// number of set bits.
pub fn execute(plan: &Plan<'_>, opts: ExecOptions) -> (Vec<u64>, u64) {
    let words = plan.words();
    if threads_for(plan, opts, words) <= 1 {
        // On one thread the result is appended block by block: the
        // vector needs no zeroing first.
        let mut out = Vec::with_capacity(words);
        let count = run_blocks(opts.resolved_path(), plan, 0, words, &mut out);
        debug_assert_eq!(out.len(), words);
        return (out, count);
    }
    let mut out = vec![0u64; words];
    let count = execute_sized(plan, opts, &mut out);
    (out, count)
}

/// The number of threads to run a plan of `words` words on.
fn threads_for(plan: &Plan<'_>, opts: ExecOptions, words: usize) -> usize {
    match opts.threads {
        Some(1) => 1,
        // At most this many inputs: enough for a second thread?
        None | Some(0) if opts.resolved_threads(words, plan.max_inputs()) <= 1 => 1,
        _ => opts.resolved_threads(words, plan.inputs().len()),
    }
}

/// Executes a plan into `out` (exactly [`Plan::words`] long), returning the
/// number of set bits.
///
/// # Errors
/// [`EvalError::OutputLength`] if `out` is not [`Plan::words`] long;
/// `out` is then untouched.
pub fn execute_into(plan: &Plan<'_>, opts: ExecOptions, out: &mut [u64]) -> Result<u64, EvalError> {
    if out.len() != plan.words() {
        return Err(EvalError::OutputLength {
            out: out.len(),
            words: plan.words(),
        });
    }
    Ok(execute_sized(plan, opts, out))
}

/// [`execute_into`] for an `out` known to be [`Plan::words`] long.
fn execute_sized(plan: &Plan<'_>, opts: ExecOptions, out: &mut [u64]) -> u64 {
    let path = opts.resolved_path();
    let threads = threads_for(plan, opts, out.len());
    if threads <= 1 {
        return run_blocks(path, plan, 0, out.len(), out);
    }
    // Split on block boundaries, as evenly as possible.
    let blocks = out.len().div_ceil(CHUNK);
    let per = blocks.div_ceil(threads) * CHUNK;
    std::thread::scope(|s| {
        let (first_part, mut rest) = out.split_at_mut(per.min(out.len()));
        let mut handles = Vec::new();
        let mut start = first_part.len();
        while !rest.is_empty() {
            let take = per.min(rest.len());
            let (part, tail) = rest.split_at_mut(take);
            rest = tail;
            let at = start;
            start += take;
            handles.push(s.spawn(move || run_blocks(path, plan, at, part.len(), part)));
        }
        // The calling thread takes the first part itself.
        let mine = run_blocks(path, plan, 0, first_part.len(), first_part);
        mine + handles
            .into_iter()
            .map(|h| h.join().expect("a block worker panicked"))
            .sum::<u64>()
    })
}
