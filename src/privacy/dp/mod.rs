//! Differentially private counts with the discrete Laplace mechanism.
//!
//! # Mechanism
//!
//! [`noisy_count`] adds noise `Y` drawn from the discrete Laplace (two-sided
//! geometric) distribution with `P(Y = y) ∝ exp(-ε·|y|)` for every integer
//! `y`, i.e. scale `1/ε`. A count has sensitivity 1 (adding or removing one
//! person changes it by at most 1), so releasing `count + Y` is
//! ε-differentially private.
//!
//! # Exact sampling
//!
//! ε is an exact rational [`Epsilon`] `s/t`. Sampling uses only uniform
//! random integers and integer arithmetic, following the method of Canonne,
//! Kamath and Steinke, "The Discrete Gaussian for Differential Privacy"
//! (NeurIPS 2020): Bernoulli(`exp(-γ)`) for rational `γ` is built from
//! Bernoulli(`γ/k`) trials; a geometric variable with parameter
//! `1 - exp(-1/t)` is assembled from a uniform remainder in `0..t` and a count
//! of Bernoulli(`exp(-1)`) successes; dividing by `s` and attaching a random
//! sign (rejecting negative zero) gives the discrete Laplace. No floating-point
//! number is involved, so there is no floating-point attack surface
//! (Mironov 2012).
//!
//! # Budget
//!
//! [`BudgetLedger`] tracks, per account, a total ε and what has been
//! spent, using sequential composition: k queries at ε₁…ε_k together cost
//! ε₁ + … + ε_k. An engine names the account after its data (the policy's
//! controller) and the purpose's budget in the policy, never after names a
//! caller picks. [`LedgerFile`] keeps a ledger in a file that processes share,
//! charging under an exclusive lock. See [`crate::privacy`] for what ε means
//! and its limits.

mod budget;
mod file;
mod rng;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

pub use budget::{Account, BudgetError, BudgetLedger, Charge};
pub use file::{BudgetStore, LedgerFile};
pub use rng::{RandomError, RandomSource, SplitMix64, SystemRandomSource};

/// Errors from the DP mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DpError {
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The privacy budget refused the query.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The true count or the noisy result does not fit in an `i64`.
    #[error("count {count} is too large for a noisy count (maximum is i64::MAX)")]
    CountTooLarge {
        /// The count supplied.
        count: u64,
    },
    /// The noise or the noisy result does not fit in an `i64` (practically
    /// unreachable: it needs a noise magnitude above 2^63).
    #[error("noise magnitude does not fit in i64")]
    NoiseOverflow,
}

/// Error parsing or building an [`Epsilon`] or [`Rational`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid epsilon {input:?}: {reason}")]
#[non_exhaustive]
pub struct EpsilonError {
    /// The text or fraction that was rejected.
    pub input: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses `"n"`, `"n/d"` or a decimal `"i.f"` (at most 18 fractional digits)
/// into a reduced fraction.
fn parse_fraction(s: &str) -> Result<(u128, u128), EpsilonError> {
    let err = |reason| EpsilonError {
        input: s.to_owned(),
        reason,
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (num, den) = if let Some((n, d)) = s.split_once('/') {
        if !digits(n) || !digits(d) {
            return Err(err("expected digits on both sides of '/'"));
        }
        let n: u128 = n.parse().map_err(|_| err("numerator too large"))?;
        let d: u128 = d.parse().map_err(|_| err("denominator too large"))?;
        (n, d)
    } else {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if !digits(int) || (s.contains('.') && !digits(frac)) {
            return Err(err(
                "expected a decimal number such as 0.5, or a fraction such as 1/2",
            ));
        }
        if frac.len() > 18 || int.len() > 18 {
            return Err(err("too many digits"));
        }
        let scale = 10u128.pow(frac.len() as u32);
        let i: u128 = int.parse().map_err(|_| err("too large"))?;
        let f: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err("too large"))?
        };
        (i * scale + f, scale)
    };
    if den == 0 {
        return Err(err("denominator is zero"));
    }
    let g = gcd(num, den).max(1);
    Ok((num / g, den / g))
}

/// A positive privacy parameter ε as an exact fraction `num/den`, kept in
/// lowest terms with both parts fitting in `u32`.
///
/// Parses from `"0.5"`, `"1/2"` or `"2"`; displays and serialises as `"1/2"`
/// (or `"2"` when the denominator is 1).
///
/// ```
/// use privseg::privacy::dp::Epsilon;
///
/// let e: Epsilon = "0.25".parse().unwrap();
/// assert_eq!((e.numerator(), e.denominator()), (1, 4));
/// assert_eq!(e, Epsilon::new(2, 8).unwrap());
/// assert!("0".parse::<Epsilon>().is_err());
/// assert!("-1".parse::<Epsilon>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epsilon {
    num: u32,
    den: u32,
}

impl Epsilon {
    /// `num/den`, reduced.
    ///
    /// # Errors
    /// If `num` or `den` is 0.
    pub fn new(num: u32, den: u32) -> Result<Self, EpsilonError> {
        Self::from_parts(u128::from(num), u128::from(den), &format!("{num}/{den}"))
    }

    fn from_parts(num: u128, den: u128, input: &str) -> Result<Self, EpsilonError> {
        let err = |reason| EpsilonError {
            input: input.to_owned(),
            reason,
        };
        if den == 0 {
            return Err(err("denominator is zero"));
        }
        if num == 0 {
            return Err(err("epsilon must be greater than zero"));
        }
        let g = gcd(num, den);
        let (n, d) = (num / g, den / g);
        match (u32::try_from(n), u32::try_from(d)) {
            (Ok(num), Ok(den)) => Ok(Self { num, den }),
            _ => Err(err(
                "numerator and denominator must fit in 32 bits after reduction",
            )),
        }
    }

    /// Numerator (in lowest terms).
    pub fn numerator(&self) -> u32 {
        self.num
    }

    /// Denominator (in lowest terms).
    pub fn denominator(&self) -> u32 {
        self.den
    }

    /// Approximate value, for display only; never used for sampling.
    pub fn to_f64(&self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

impl FromStr for Epsilon {
    type Err = EpsilonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, d) = parse_fraction(s)?;
        Self::from_parts(n, d, s)
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Rational::from(*self).fmt(f)
    }
}

impl serde::Serialize for Epsilon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Epsilon {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A non-negative exact fraction with `u64` parts in lowest terms, used for
/// budget totals, amounts spent and amounts remaining.
///
/// Displays and serialises as `"n/d"` (or `"n"` when `d = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: u64,
    den: u64,
}

impl Rational {
    /// Zero.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };

    fn reduced(num: u128, den: u128) -> Option<Self> {
        let g = gcd(num, den).max(1);
        Some(Self {
            num: u64::try_from(num / g).ok()?,
            den: u64::try_from(den / g).ok()?,
        })
    }

    /// Numerator (in lowest terms).
    pub fn numerator(&self) -> u64 {
        self.num
    }

    /// Denominator (in lowest terms).
    pub fn denominator(&self) -> u64 {
        self.den
    }

    /// Sum, or `None` if it does not fit in `u64` parts.
    pub fn checked_add(self, other: Rational) -> Option<Rational> {
        let (a, b) = (u128::from(self.num), u128::from(self.den));
        let (c, d) = (u128::from(other.num), u128::from(other.den));
        let g = gcd(b, d);
        let den = (b / g).checked_mul(d)?;
        let num = a.checked_mul(d / g)?.checked_add(c.checked_mul(b / g)?)?;
        Self::reduced(num, den)
    }

    /// Difference, or `None` if negative or not representable.
    pub fn checked_sub(self, other: Rational) -> Option<Rational> {
        let (a, b) = (u128::from(self.num), u128::from(self.den));
        let (c, d) = (u128::from(other.num), u128::from(other.den));
        let g = gcd(b, d);
        let den = (b / g).checked_mul(d)?;
        let num = a.checked_mul(d / g)?.checked_sub(c.checked_mul(b / g)?)?;
        Self::reduced(num, den)
    }

    /// Approximate value, for display only.
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl From<Epsilon> for Rational {
    fn from(e: Epsilon) -> Self {
        Rational {
            num: u64::from(e.num),
            den: u64::from(e.den),
        }
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl FromStr for Rational {
    type Err = EpsilonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, d) = parse_fraction(s)?;
        Self::reduced(n, d).ok_or(EpsilonError {
            input: s.to_owned(),
            reason: "does not fit in 64-bit numerator and denominator",
        })
    }
}

impl serde::Serialize for Rational {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Rational {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Uniform integer in `0..n` (`n > 0`) by rejection, without modulo bias.
fn uniform_below<R: RandomSource + ?Sized>(rng: &mut R, n: u64) -> Result<u64, RandomError> {
    debug_assert!(n > 0);
    // Values below 2^64 mod n are rejected so the rest split evenly.
    let reject_below = n.wrapping_neg() % n;
    loop {
        let x = rng.next_u64()?;
        if x >= reject_below {
            return Ok(x % n);
        }
    }
}

/// Bernoulli(num/den) for `num <= den`, `den > 0`.
fn bernoulli_ratio<R: RandomSource + ?Sized>(
    rng: &mut R,
    num: u64,
    den: u64,
) -> Result<bool, RandomError> {
    Ok(uniform_below(rng, den)? < num)
}

/// Bernoulli(exp(-num/den)) for `0 <= num/den <= 1`.
///
/// Draws Bernoulli(γ/1), Bernoulli(γ/2), … until the first failure at trial
/// `k`; `k` is odd with probability exactly `exp(-γ)`.
fn bernoulli_exp_neg_unit<R: RandomSource + ?Sized>(
    rng: &mut R,
    num: u64,
    den: u64,
) -> Result<bool, RandomError> {
    debug_assert!(num <= den && den > 0);
    let mut k: u64 = 1;
    // den * k overflows only after about 2^32 consecutive successes, whose
    // probability is below 1/(2^32)!; that case is treated as a failure.
    while let Some(scaled_den) = den.checked_mul(k) {
        if !bernoulli_ratio(rng, num, scaled_den)? {
            break;
        }
        k += 1;
    }
    Ok(k % 2 == 1)
}

/// Bernoulli(exp(-num/den)) for any non-negative rational `num/den`.
pub fn bernoulli_exp_neg<R: RandomSource + ?Sized>(
    rng: &mut R,
    num: u64,
    den: u64,
) -> Result<bool, RandomError> {
    if den == 0 {
        // exp(-infinity) = 0
        return Ok(false);
    }
    for _ in 0..num / den {
        if !bernoulli_exp_neg_unit(rng, 1, 1)? {
            return Ok(false);
        }
    }
    bernoulli_exp_neg_unit(rng, num % den, den)
}

/// Draws from the discrete Laplace distribution with `P(y) ∝ exp(-ε·|y|)`
/// (scale `1/ε`), exactly, using integer arithmetic only.
///
/// ```
/// use privseg::privacy::dp::{sample_discrete_laplace, Epsilon, SplitMix64};
///
/// let mut rng = SplitMix64::new(7); // tests only; use SystemRandomSource in production
/// let eps: Epsilon = "0.5".parse().unwrap();
/// let y = sample_discrete_laplace(&mut rng, eps).unwrap();
/// assert!(y.abs() < 1_000);
/// ```
///
/// # Errors
/// [`DpError::Random`] if the random source fails.
pub fn sample_discrete_laplace<R: RandomSource + ?Sized>(
    rng: &mut R,
    epsilon: Epsilon,
) -> Result<i64, DpError> {
    let s = u64::from(epsilon.num);
    let t = u64::from(epsilon.den);
    loop {
        // Geometric with parameter 1 - exp(-1/t): X = U + t·V.
        let u = uniform_below(rng, t)?;
        if !bernoulli_exp_neg_unit(rng, u, t)? {
            continue;
        }
        let mut v: u64 = 0;
        while bernoulli_exp_neg_unit(rng, 1, 1)? {
            v = v.saturating_add(1);
        }
        let x = u128::from(u) + u128::from(t) * u128::from(v);
        // Geometric with parameter 1 - exp(-s/t).
        let y = x / u128::from(s);
        let negative = rng.next_u64()? & 1 == 1;
        if negative && y == 0 {
            continue;
        }
        let y = i64::try_from(y).map_err(|_| DpError::NoiseOverflow)?;
        return Ok(if negative { -y } else { y });
    }
}

/// `count + Y` with `Y` from [`sample_discrete_laplace`]: an ε-differentially
/// private release of a count (sensitivity 1). The result may be negative;
/// clamping it to 0 afterwards is allowed (post-processing).
///
/// This does not charge a budget; use [`BudgetLedger::noisy_count`] for that.
///
/// # Errors
/// Random source failure, or a count above `i64::MAX`.
pub fn noisy_count<R: RandomSource + ?Sized>(
    count: u64,
    epsilon: Epsilon,
    rng: &mut R,
) -> Result<i64, DpError> {
    let base = i64::try_from(count).map_err(|_| DpError::CountTooLarge { count })?;
    let noise = sample_discrete_laplace(rng, epsilon)?;
    base.checked_add(noise).ok_or(DpError::NoiseOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_parsing() {
        let e: Epsilon = "0.5".parse().unwrap();
        assert_eq!((e.numerator(), e.denominator()), (1, 2));
        assert_eq!("1/2".parse::<Epsilon>().unwrap(), e);
        assert_eq!("2".parse::<Epsilon>().unwrap(), Epsilon::new(2, 1).unwrap());
        assert_eq!(
            "0.125".parse::<Epsilon>().unwrap(),
            Epsilon::new(1, 8).unwrap()
        );
        assert_eq!("3.".parse::<Epsilon>().ok(), None);
        for bad in [
            "",
            "0",
            "0.0",
            "-1",
            "1e-3",
            "abc",
            "1/0",
            "0/5",
            " 1",
            "0.1234567891234",
        ] {
            assert!(bad.parse::<Epsilon>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(e.to_string(), "1/2");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"1/2\"");
        assert_eq!(serde_json::from_str::<Epsilon>("\"0.5\"").unwrap(), e);
    }

    #[test]
    fn rational_arithmetic() {
        let a: Rational = "1/3".parse().unwrap();
        let b: Rational = "1/6".parse().unwrap();
        assert_eq!(a.checked_add(b).unwrap(), "1/2".parse().unwrap());
        assert_eq!(a.checked_sub(b).unwrap(), b);
        assert_eq!(b.checked_sub(a), None);
        assert!(b < a);
        assert_eq!(a.checked_sub(a).unwrap(), Rational::ZERO);
        let big = Rational::reduced(1, u128::from(u64::MAX)).unwrap();
        let big2 = Rational::reduced(1, u128::from(u64::MAX - 1)).unwrap();
        assert_eq!(big.checked_add(big2), None);
    }

    #[test]
    fn uniform_below_is_in_range_and_covers() {
        let mut r = SplitMix64::new(1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[uniform_below(&mut r, 7).unwrap() as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (850..1150).contains(&c)), "{seen:?}");
    }

    #[test]
    fn bernoulli_exp_neg_rate() {
        // exp(-1/2) ≈ 0.6065, exp(-3/2) ≈ 0.2231
        for (num, den, p) in [(1u64, 2u64, (-0.5f64).exp()), (3, 2, (-1.5f64).exp())] {
            let mut r = SplitMix64::new(99);
            let n = 100_000;
            let hits = (0..n)
                .filter(|_| bernoulli_exp_neg(&mut r, num, den).unwrap())
                .count() as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (hits / n as f64 - p).abs() < 5.0 * sd,
                "{num}/{den}: {hits}"
            );
        }
    }

    #[test]
    fn noisy_count_rejects_huge_counts() {
        let mut r = SplitMix64::new(3);
        let e = Epsilon::new(1, 1).unwrap();
        assert_eq!(
            noisy_count(u64::MAX, e, &mut r),
            Err(DpError::CountTooLarge { count: u64::MAX })
        );
    }
}
