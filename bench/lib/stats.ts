// Small statistics shared by the benchmark modules.

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** "min..max" of per-round figures, rounded, for printing a median's spread. */
export const spread = (xs: readonly number[]): string => `${Math.round(Math.min(...xs))}..${Math.round(Math.max(...xs))}`;
