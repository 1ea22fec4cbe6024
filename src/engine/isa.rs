//! Run-time choice of instruction set for the scoring loops, and the only `unsafe` in
//! the crate: running the copy of a [`Kernel`] compiled for AVX-512 or AVX2 after
//! `is_x86_feature_detected!` has confirmed that this CPU runs it, and the gather
//! instructions the AVX-512 copy uses for leaf lookups.
//!
//! The kernels themselves are safe Rust; `#[target_feature]` only lets the compiler
//! vectorize them wider. Nothing depends on `-C target-cpu`: a binary built for plain
//! x86-64 uses AVX-512 or AVX2 where the CPU has them, and the portable copy elsewhere.
//! Every copy computes the same scores, bit for bit (the tests run all of them). This
//! file knows nothing of what a kernel computes: `scorer.rs` implements [`Kernel`] for
//! its block loop and calls [`run`].

/// An instruction set the scorer has a compiled copy for, slowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Whatever the build target guarantees (SSE2 on x86-64); every CPU.
    Portable,
    /// x86-64 with AVX2 (4 f64 per instruction).
    Avx2,
    /// x86-64 with AVX-512 F/VL/DQ/BW (8 f64 per instruction, mask registers).
    Avx512,
}

impl Isa {
    /// Every instruction set, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name() == s)
            .ok_or_else(|| format!("unknown instruction set `{s}` (portable, avx2 or avx512)"))
    }
}

/// The best instruction set this CPU supports.
pub fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Adds `values[positions[r]]` to `sums[r]` for every row `r` of a block (a position
/// past the end reads the last value; `values` is a tree's leaf table, never empty;
/// `positions` and `sums` have one entry per row): the leaf lookup, which the compiler
/// leaves scalar; the AVX-512 copy uses gather instructions.
pub(crate) trait LeafGather: Copy {
    /// Whether this copy has gather instructions (then loops that look tables up
    /// row by row in lock step are vectorized with them).
    const GATHERS: bool;

    fn add(self, values: &[f64], positions: &[u32], sums: &mut [f64]);
}

/// One row at a time; every CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar;

impl LeafGather for Scalar {
    const GATHERS: bool = false;

    #[inline(always)]
    fn add(self, values: &[f64], positions: &[u32], sums: &mut [f64]) {
        let Some(last) = values.len().checked_sub(1) else {
            return;
        };
        for (sum, &position) in sums.iter_mut().zip(positions) {
            *sum += values[(position as usize).min(last)];
        }
    }
}

/// Work compiled once per instruction set: [`run`] calls `score` from a function built
/// for the chosen set, so `score` (which must be `#[inline(always)]`) and everything it
/// inlines are vectorized for that set, and look leaves up with its `gather`.
pub(crate) trait Kernel {
    fn score(&mut self, gather: impl LeafGather);
}

/// Runs `kernel` with the copy compiled for `isa`, which must not exceed [`detect`]
/// (the scorer only ever holds such a choice).
#[inline]
pub(crate) fn run(isa: Isa, kernel: &mut impl Kernel) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::avx512(kernel),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::avx2(kernel),
        _ => kernel.score(Scalar),
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,bmi1")]
    fn score_avx512(kernel: &mut impl Kernel) {
        kernel.score(Avx512Gather(()))
    }

    #[target_feature(enable = "avx2,bmi1")]
    fn score_avx2(kernel: &mut impl Kernel) {
        kernel.score(Avx2Gather(()))
    }

    pub(super) fn avx512(kernel: &mut impl Kernel) {
        debug_assert!(detect() >= Isa::Avx512);
        // SAFETY: the scorer only selects `Isa::Avx512` when `detect()` found every
        // feature this function is compiled with on the running CPU.
        unsafe { score_avx512(kernel) }
    }

    pub(super) fn avx2(kernel: &mut impl Kernel) {
        debug_assert!(detect() >= Isa::Avx2);
        // SAFETY: as above, for AVX2 and BMI1.
        unsafe { score_avx2(kernel) }
    }

    /// The last index of `values` as a gather index, if `values` is not empty.
    #[inline(always)]
    fn last_index(values: &[f64]) -> Option<i32> {
        values
            .len()
            .checked_sub(1)
            .and_then(|i| i32::try_from(i).ok())
    }

    /// Eight rows per gather. Only `score_avx512` makes one (the private field), so it
    /// only runs where AVX-512 was detected.
    #[derive(Debug, Clone, Copy)]
    struct Avx512Gather(());

    impl LeafGather for Avx512Gather {
        const GATHERS: bool = true;

        #[inline(always)]
        fn add(self, values: &[f64], positions: &[u32], sums: &mut [f64]) {
            let Some(last) = last_index(values) else {
                return;
            };
            let (position_lanes, position_rest) = positions.as_chunks::<8>();
            let (sum_lanes, sum_rest) = sums.as_chunks_mut::<8>();
            // SAFETY: AVX-512F is present (see the type).
            let last = unsafe { _mm256_set1_epi32(last) };
            for (position, sum) in position_lanes.iter().zip(sum_lanes) {
                // SAFETY: AVX-512F is present (see the type); each pointer reads or
                // writes the 8 elements of its array, and every gathered index is
                // clamped to `last`, inside `values`.
                unsafe {
                    let index = _mm256_loadu_si256(position.as_ptr().cast());
                    let index = _mm256_min_epu32(index, last);
                    let leaf = _mm512_i32gather_pd::<8>(index, values.as_ptr());
                    let total = _mm512_add_pd(_mm512_loadu_pd(sum.as_ptr()), leaf);
                    _mm512_storeu_pd(sum.as_mut_ptr(), total);
                }
            }
            Scalar.add(values, position_rest, sum_rest);
        }
    }

    /// Made only by `score_avx2`, as above: its lock-step searches gather, but leaves
    /// are added row by row. Four-row leaf gathers were slower than scalar loads on the
    /// AMD EPYC we build on (`giftrank bench --isa avx2`, three interleaved pairs, ns/row:
    /// shipped Direct 482 → 465, gift_prob 508 → 490, Stage2 332 → 316; deeper shapes
    /// unchanged), while AVX-512's eight-row gathers stay ahead of them (Direct 354 → 374).
    #[derive(Debug, Clone, Copy)]
    struct Avx2Gather(());

    impl LeafGather for Avx2Gather {
        const GATHERS: bool = true;

        #[inline(always)]
        fn add(self, values: &[f64], positions: &[u32], sums: &mut [f64]) {
            Scalar.add(values, positions, sums)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        let error = "sse9".parse::<Isa>().expect_err("unknown");
        assert!(error.contains("`sse9`"), "{error}");
    }
}
