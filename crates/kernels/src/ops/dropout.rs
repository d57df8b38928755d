//! Inverted dropout driven by a counter-based RNG: element i of a call with (seed, offset)
//! is kept when uniform(seed, offset + i) >= p, so native and wasm draw the same mask.

/// u32 hash of (seed, counter): splitmix64 of `(seed << 32) | counter`, high 32 bits.
/// Public so the TypeScript reference backend can mirror it bit for bit.
pub fn random_u32(seed: u32, counter: u32) -> u32 {
    let _ = (seed, counter);
    todo!()
}

/// out = keep ? inp / (1 - p) : 0; keep: [n] saved (1 kept, 0 dropped). p in [0, 1).
pub fn dropout_forward(out: &mut [f32], keep: &mut [u8], inp: &[f32], p: f32, seed: u32, offset: u32) {
    let _ = (out, keep, inp, p, seed, offset);
    todo!()
}

/// Accumulates dinp += keep ? dout / (1 - p) : 0.
pub fn dropout_backward(dinp: &mut [f32], dout: &[f32], keep: &[u8], p: f32) {
    let _ = (dinp, dout, keep, p);
    todo!()
}
