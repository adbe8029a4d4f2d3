// Small statistics shared by the benchmark modules.

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** "min..max" of per-round figures, to `digits` decimals, for printing a median's spread. */
export const spread = (xs: readonly number[], digits = 0): string => `${Math.min(...xs).toFixed(digits)}..${Math.max(...xs).toFixed(digits)}`;
