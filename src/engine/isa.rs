//! Run-time choice of instruction set for the scoring loops, and the only `unsafe` in
//! the crate: calling the copy of `Scorer::score_block_inline` compiled for AVX-512 or
//! AVX2 after `is_x86_feature_detected!` has confirmed that this CPU runs it, and the
//! gather instructions those copies use for leaf lookups.
//!
//! The kernels themselves are safe Rust; `#[target_feature]` only lets the compiler
//! vectorize them wider. Nothing depends on `-C target-cpu`: a binary built for plain
//! x86-64 uses AVX-512 or AVX2 where the CPU has them, and the portable copy elsewhere.
//! Every copy computes the same scores, bit for bit (the tests run all of them).

use super::matrix::FeatureMatrix;
use super::scorer::{Block, Scorer, ROWS};
use super::tree::Forest;

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

/// Adds `values[positions[r]]` to `sums[r]` for every row of a block (a position past
/// the end reads the last value; `values` is a tree's leaf table, never empty): the
/// leaf lookup, which the compiler leaves scalar; the x86 copies use gather
/// instructions.
pub(crate) trait LeafGather: Copy {
    fn add(self, values: &[f64], positions: &[u32; ROWS], sums: &mut [f64; ROWS]);
}

/// One row at a time; every CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar;

impl LeafGather for Scalar {
    #[inline(always)]
    fn add(self, values: &[f64], positions: &[u32; ROWS], sums: &mut [f64; ROWS]) {
        let Some(last) = values.len().checked_sub(1) else {
            return;
        };
        for (sum, &position) in sums.iter_mut().zip(positions) {
            *sum += values[(position as usize).min(last)];
        }
    }
}

/// Scores one block with the copy compiled for `isa`, which must not exceed [`detect`]
/// (`Scorer` guarantees it).
pub(crate) fn score_block(
    isa: Isa,
    scorer: &Scorer,
    forest: &Forest,
    rows: &FeatureMatrix,
    start: usize,
    block: &mut Block,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::avx512(scorer, forest, rows, start, block),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::avx2(scorer, forest, rows, start, block),
        _ => scorer.score_block_inline(Scalar, forest, rows, start, block),
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,bmi1")]
    fn score_avx512(s: &Scorer, f: &Forest, rows: &FeatureMatrix, start: usize, b: &mut Block) {
        s.score_block_inline(Avx512Gather(()), f, rows, start, b)
    }

    #[target_feature(enable = "avx2,bmi1")]
    fn score_avx2(s: &Scorer, f: &Forest, rows: &FeatureMatrix, start: usize, b: &mut Block) {
        s.score_block_inline(Avx2Gather(()), f, rows, start, b)
    }

    pub(super) fn avx512(
        s: &Scorer,
        f: &Forest,
        rows: &FeatureMatrix,
        start: usize,
        b: &mut Block,
    ) {
        debug_assert!(detect() >= Isa::Avx512);
        // SAFETY: `Scorer` only selects `Isa::Avx512` when `detect()` found every
        // feature this function is compiled with on the running CPU.
        unsafe { score_avx512(s, f, rows, start, b) }
    }

    pub(super) fn avx2(s: &Scorer, f: &Forest, rows: &FeatureMatrix, start: usize, b: &mut Block) {
        debug_assert!(detect() >= Isa::Avx2);
        // SAFETY: as above, for AVX2 and BMI1.
        unsafe { score_avx2(s, f, rows, start, b) }
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
        #[inline(always)]
        fn add(self, values: &[f64], positions: &[u32; ROWS], sums: &mut [f64; ROWS]) {
            let Some(last) = last_index(values) else {
                return;
            };
            // SAFETY: AVX-512F is present (see the type); every pointer below reads or
            // writes 8 elements inside its array (`lane + 8 <= ROWS`), and every gathered
            // index is clamped to `last`, inside `values`.
            unsafe {
                let last = _mm256_set1_epi32(last);
                for lane in (0..ROWS).step_by(8) {
                    let index = _mm256_loadu_si256(positions.as_ptr().add(lane).cast());
                    let index = _mm256_min_epu32(index, last);
                    let leaf = _mm512_i32gather_pd::<8>(index, values.as_ptr());
                    let sum = _mm512_loadu_pd(sums.as_ptr().add(lane));
                    _mm512_storeu_pd(sums.as_mut_ptr().add(lane), _mm512_add_pd(sum, leaf));
                }
            }
        }
    }

    /// Four rows per gather; made only by `score_avx2`, as above.
    #[derive(Debug, Clone, Copy)]
    struct Avx2Gather(());

    impl LeafGather for Avx2Gather {
        #[inline(always)]
        fn add(self, values: &[f64], positions: &[u32; ROWS], sums: &mut [f64; ROWS]) {
            let Some(last) = last_index(values) else {
                return;
            };
            // SAFETY: AVX2 is present (see the type); every pointer below reads or writes
            // 4 elements inside its array (`lane + 4 <= ROWS`), and every gathered index
            // is clamped to `last`, inside `values`.
            unsafe {
                let last = _mm_set1_epi32(last);
                for lane in (0..ROWS).step_by(4) {
                    let index = _mm_loadu_si128(positions.as_ptr().add(lane).cast());
                    let index = _mm_min_epu32(index, last);
                    let leaf = _mm256_i32gather_pd::<8>(values.as_ptr(), index);
                    let sum = _mm256_loadu_pd(sums.as_ptr().add(lane));
                    _mm256_storeu_pd(sums.as_mut_ptr().add(lane), _mm256_add_pd(sum, leaf));
                }
            }
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

    #[test]
    fn a_scorer_never_uses_more_than_the_cpu_has() {
        let forest = super::super::tree::Forest::default();
        let mut scorer = Scorer::new(&forest);
        assert_eq!(scorer.isa(), detect());
        assert_eq!(scorer.set_isa(Isa::Avx512), detect());
        assert_eq!(scorer.set_isa(Isa::Portable), Isa::Portable);
    }
}
