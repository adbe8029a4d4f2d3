// Seeded generators for the shared-core tests and benchmarks (no Math.random: runs must repeat).

/** mulberry32: a small, fast 32-bit PRNG; returns uniform doubles in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal sample with the given log-mean and log-sd (Box–Muller). */
export function lognormal(rnd: () => number, mu: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  return Math.exp(mu + sigma * z);
}

/** Pareto sample (scale xm, shape alpha): a heavy tail. */
export function pareto(rnd: () => number, xm: number, alpha: number): number {
  return Math.min(xm / Math.pow(1 - rnd(), 1 / alpha), 1e11);
}
