//! Inverted dropout driven by a counter-based RNG: element i of a call with (seed, offset)
//! is kept when uniform(seed, offset + i) >= p, so native and wasm draw the same mask.
//!
//! Exact recipe (the TypeScript reference mirrors it bit for bit):
//! - `r = random_u32(seed, offset.wrapping_add(i as u32))`
//! - `threshold = floor(p as f64 * 2^32) as u64`; keep iff `r as u64 >= threshold`
//! - kept values are scaled by `1.0f32 / (1.0f32 - p)` (computed in f32).

/// u32 hash of (seed, counter): splitmix64 of `(seed << 32) | counter`, high 32 bits.
/// Public so the TypeScript reference backend can mirror it bit for bit:
/// `x = (seed << 32) | counter; z = x + 0x9E3779B97F4A7C15;`
/// `z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;`
/// `z ^= z >> 31; return z >> 32` (all u64 arithmetic wrapping).
pub fn random_u32(seed: u32, counter: u32) -> u32 {
    let x = ((seed as u64) << 32) | counter as u64;
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 32) as u32
}

/// The keep decision of the recipe above for one (p, seed): element `counter` is kept iff
/// `random_u32(seed, counter) as u64 >= floor(p as f64 * 2^32)`. Shared by dropout and by
/// the dropout attention applies to its weights, so both follow the one recipe.
#[derive(Clone, Copy, Debug)]
pub struct DropoutMask {
    threshold: u64,
    scale: f32,
    seed: u32,
}

impl DropoutMask {
    /// p in [0, 1), as the shims check.
    pub fn new(p: f32, seed: u32) -> Self {
        assert!((0.0..1.0).contains(&p), "dropout probability {p} is outside [0, 1)");
        DropoutMask { threshold: ((p as f64) * 4_294_967_296.0).floor() as u64, scale: 1.0f32 / (1.0f32 - p), seed }
    }

    #[inline]
    pub fn keeps(&self, counter: u32) -> bool {
        (random_u32(self.seed, counter) as u64) >= self.threshold
    }

    /// `1.0f32 / (1.0f32 - p)`, the factor kept values are multiplied by.
    #[inline]
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// What element `counter` is multiplied by: 1 / (1 - p) when kept, else 0.
    #[inline]
    pub fn factor(&self, counter: u32) -> f32 {
        if self.keeps(counter) { self.scale } else { 0.0 }
    }

    /// x[c] *= factor(first + c) (wrapping). A multiplication, so a NaN stays NaN even
    /// where dropped, as PyTorch's `x * mask` keeps it.
    #[inline]
    pub fn apply(&self, x: &mut [f32], first: u32) {
        for (c, v) in x.iter_mut().enumerate() {
            *v *= self.factor(first.wrapping_add(c as u32));
        }
    }
}

/// out = keep ? inp / (1 - p) : 0; keep: [n] saved (1 kept, 0 dropped). p in [0, 1).
/// Element i is kept iff `random_u32(seed, offset.wrapping_add(i)) as u64 >=
/// floor(p as f64 * 2^32)`; kept values are multiplied by `1.0f32 / (1.0f32 - p)`.
pub fn dropout_forward(out: &mut [f32], keep: &mut [u8], inp: &[f32], p: f32, seed: u32, offset: u32) {
    assert!(out.len() == inp.len() && keep.len() == inp.len());
    let mask = DropoutMask::new(p, seed);
    for (i, ((o, kp), &x)) in out.iter_mut().zip(keep.iter_mut()).zip(inp).enumerate() {
        let kept = mask.keeps(offset.wrapping_add(i as u32));
        *kp = kept as u8;
        *o = if kept { x * mask.scale() } else { 0.0 };
    }
}

/// Accumulates dinp += keep ? dout / (1 - p) : 0 (multiplied by `1.0f32 / (1.0f32 - p)`,
/// the same f32 scale as forward).
pub fn dropout_backward(dinp: &mut [f32], dout: &[f32], keep: &[u8], p: f32) {
    assert!(dinp.len() == dout.len() && dinp.len() == keep.len());
    let scale = 1.0f32 / (1.0f32 - p);
    for ((di, &go), &kp) in dinp.iter_mut().zip(dout).zip(keep) {
        if kp != 0 {
            *di += go * scale;
        }
    }
}
