// The dropout RNG, mirroring crates/kernels/src/ops/dropout.rs bit for bit (splitmix64 over
// `(seed << 32) | counter`, in 32-bit halves since JavaScript numbers hold 53 bits).

/** The full 64-bit product of two u32 as [hi, lo], exact in doubles via 16-bit limbs. */
function mul32x32(a: number, b: number): [number, number] {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const lo = a0 * b0 + (mid % 65536) * 65536; // < 2^33
  const carry = Math.floor(lo / 4294967296);
  const hi = (a1 * b1 + Math.floor(mid / 65536) + carry) % 4294967296;
  return [hi, lo % 4294967296];
}

/** (ahi:alo) · (bhi:blo) mod 2^64 as [hi, lo]. */
function mul64(ahi: number, alo: number, bhi: number, blo: number): [number, number] {
  const [phi, plo] = mul32x32(alo, blo);
  const hi = (phi + Math.imul(ahi, blo) + Math.imul(alo, bhi)) >>> 0;
  return [hi, plo];
}

/** High 32 bits of splitmix64((seed << 32) | counter), as `random_u32` in dropout.rs. */
export function randomU32(seed: number, counter: number): number {
  let hi = seed >>> 0;
  let lo = counter >>> 0;
  // z = x + 0x9E3779B97F4A7C15
  const sumLo = lo + 0x7f4a7c15;
  lo = sumLo >>> 0;
  hi = (hi + 0x9e3779b9 + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
  // z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  let slo = ((lo >>> 30) | (hi << 2)) >>> 0;
  let shi = hi >>> 30;
  [hi, lo] = mul64((hi ^ shi) >>> 0, (lo ^ slo) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  // z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  slo = ((lo >>> 27) | (hi << 5)) >>> 0;
  shi = hi >>> 27;
  [hi, lo] = mul64((hi ^ shi) >>> 0, (lo ^ slo) >>> 0, 0x94d049bb, 0x133111eb);
  // z ^= z >> 31; only the high word is returned, and (z >> 31)'s high word is hi >>> 31.
  return (hi ^ (hi >>> 31)) >>> 0;
}

/** Threshold on the u32 draw: keep iff draw >= floor(p·2^32), p as the f32 the kernel sees. */
export function dropoutThreshold(p: number): number {
  return Math.floor(Math.fround(p) * 4294967296);
}
