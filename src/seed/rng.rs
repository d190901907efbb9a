//! Keyed random streams: the root of ward's determinism.
//!
//! Every generated value comes from a stream addressed by (seed, stream name,
//! entity). The stream is ChaCha8 (a pinned algorithm) keyed by the seed, with
//! the stream name hashed into ChaCha's 64-bit stream id and the entity number
//! selecting a disjoint window of the keystream. So a row's values depend only
//! on its own address — not on thread count, chunking, or what other tables'
//! generators do — and changing one generator cannot shift another's values.
//!
//! The distributions are written here on purpose (instead of `rand`'s), using
//! only integer arithmetic and IEEE +,−,×,÷, so the mapping from keystream to
//! values cannot change under a dependency upgrade or differ across platforms.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Words (u32) of keystream reserved for each entity: far more than any
/// entity draws, so windows never overlap.
const WORDS_PER_ENTITY: u128 = 1 << 24;

/// A stable 64-bit FNV-1a hash (never `std`'s `DefaultHasher`, which may change).
pub(crate) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// A SplitMix64 finaliser: a cheap, well-mixed bijection on u64.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One entity's random stream.
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// The stream for `entity` of `name` (e.g. `("conditions", patient_index)`) under `seed`.
    pub fn new(seed: u64, name: &str, entity: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&fnv1a(b"ward/seed/v1").to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(fnv1a(name.as_bytes()));
        rng.set_word_pos(entity as u128 * WORDS_PER_ENTITY);
        Stream(rng)
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; bias < n / 2^64, negligible
    /// for the list sizes here and, above all, deterministic).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Approximately normal (Irwin–Hall of four uniforms: no transcendental
    /// functions, so bit-identical everywhere), clamped to `lo..=hi`.
    pub fn normal(&mut self, mean: f64, sd: f64, lo: f64, hi: f64) -> f64 {
        let s = self.unit() + self.unit() + self.unit() + self.unit();
        // Four U(0,1) have mean 2 and variance 1/3.
        let z = (s - 2.0) * 1.732_050_807_568_877_2;
        (mean + z * sd).clamp(lo, hi)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// The underlying generator, for crates that take a `rand` RNG (`fake`).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }
}

/// A keyed bijection on `0..n`: a balanced 4-round Feistel network on the
/// next even number of bits, cycle-walking until the value falls inside the
/// domain. Used to hand out unique values without draws or retries.
pub(crate) fn permute(key: u64, x: u64, n: u64) -> u64 {
    debug_assert!(x < n);
    if n <= 1 {
        return 0;
    }
    let bits = (64 - (n - 1).leading_zeros()).max(2);
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut v = x;
    loop {
        let (mut l, mut r) = (v >> half, v & mask);
        for round in 0..4u64 {
            let f = mix64(key ^ (round << 56) ^ r) & mask;
            (l, r) = (r, l ^ f);
        }
        v = (l << half) | r;
        if v < n {
            return v;
        }
    }
}

/// A weighted choice over a fixed list, by cumulative weights.
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect::<Vec<_>>();
        assert!(total > 0, "a weighted list needs a positive total weight");
        Weighted { cumulative }
    }

    /// An index, with probability proportional to its weight.
    pub fn sample(&self, rng: &mut Stream) -> usize {
        let total = *self.cumulative.last().unwrap();
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_addressed_not_sequential() {
        let a: Vec<u64> = (0..4).map(|_| Stream::new(1, "t", 5).u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Stream::new(1, "t", 5).u64(), Stream::new(1, "t", 6).u64());
        assert_ne!(Stream::new(1, "t", 5).u64(), Stream::new(1, "u", 5).u64());
        assert_ne!(Stream::new(1, "t", 5).u64(), Stream::new(2, "t", 5).u64());
    }

    #[test]
    fn pinned_keystream() {
        // Changing this value changes every generated row: a versioned decision.
        assert_eq!(
            Stream::new(42, "patients", 0).u64(),
            16_783_842_316_153_706_492
        );
    }

    #[test]
    fn permute_is_a_bijection() {
        for n in [1u64, 2, 3, 10, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = permute(99, x, n) as usize;
                assert!(!seen[y]);
                seen[y] = true;
            }
        }
    }

    #[test]
    fn weighted_follows_weights() {
        let w = Weighted::new([1, 0, 3]);
        let mut rng = Stream::new(7, "w", 0);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = counts[2] as f64 / counts[0] as f64;
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn normal_stays_in_bounds_and_centres() {
        let mut rng = Stream::new(3, "n", 0);
        let xs: Vec<f64> = (0..10_000)
            .map(|_| rng.normal(50.0, 10.0, 0.0, 100.0))
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((49.0..51.0).contains(&mean));
        assert!(xs.iter().all(|x| (0.0..=100.0).contains(x)));
    }
}
