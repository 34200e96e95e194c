// Small statistics for the benchmarks: medians and quartiles over rounds, paired per-round ratios (adjacent rounds
// share the machine's noise, so a ratio taken within a round is steadier than a ratio of two medians), a
// high-resolution timer, a confidence interval of a median ratio and the balanced order that interleaves variants.

/** The value at quantile `q` (0..1) of `values`, linearly interpolated; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** The median of the per-round ratios `a[i] / b[i]`. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, i) => value / b[i]));
}

/**
 * An approximate 95 % confidence interval of the median of the per-round ratios `a[i] / b[i]`: the order statistics
 * of rank r = round(n/2 − 0.98·√n) and n − r + 1 (the normal approximation of the binomial), so no assumption about
 * the distribution is needed. NaN for fewer than 6 rounds, which no such interval can cover at 95 %.
 */
export function pairedRatioInterval(a: readonly number[], b: readonly number[]): [number, number] {
  const sorted = a.map((value, i) => value / b[i]).sort((x, y) => x - y);
  const n = sorted.length;
  if (n < 6) return [NaN, NaN];
  const rank = Math.max(1, Math.round(n / 2 - 0.98 * Math.sqrt(n)));
  return [sorted[rank - 1], sorted[n - rank]];
}

/** `ratio` as `1.032× (95 % CI 1.01–1.05)`: three decimals, so that a ratio just over a 1.05 target does not print as 1.05. */
export function timesWithInterval(ratio: number, [low, high]: [number, number]): string {
  const value = `${fixed(ratio, 3)}×`;
  return Number.isFinite(low) ? `${value} (95 % CI ${fixed(low, 2)}–${fixed(high, 2)})` : `${value} (too few rounds for a 95 % CI)`;
}

/** Milliseconds since an arbitrary origin, with sub-microsecond resolution. */
export function nowMillis(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Runs `work` and resolves with how long it took, in milliseconds. */
export async function timeMillis(work: () => Promise<unknown>): Promise<number> {
  const startedAt = nowMillis();
  await work();
  return nowMillis() - startedAt;
}

/**
 * Round `round`'s order of `items`, from a Williams design: over n rounds (2n when n is odd) every item runs in every
 * position equally often and directly after every other item equally often. A plain rotation (A B C, B C A, …) keeps
 * each item behind the same neighbour, whose after-effects (a pool's connections gone cold) it would then always pay.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  const first: number[] = [];
  for (let j = 0, low = 1, high = n - 1; j < n; j++) first.push(j === 0 ? 0 : j % 2 === 1 ? low++ : high--);
  const order = first.map((k) => items[(k + round) % n]);
  return n % 2 === 1 && Math.floor(round / n) % 2 === 1 ? order.reverse() : order;
}

/** Formats a number with `digits` decimals, or "n/a" when it is not finite. */
export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Formats a ratio as `1.03×`. */
export function times(value: number): string {
  return `${fixed(value, 2)}×`;
}
