// A seeded PRNG (mulberry32) for tests that draw random operations: the
// same seed gives the same sequence, so a failing run can be replayed.

/** A function returning numbers in [0, 1), determined by `seed`. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
