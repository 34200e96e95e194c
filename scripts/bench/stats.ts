// Small statistics for the benchmarks: medians and quartiles over rounds, paired per-round ratios (adjacent rounds
// share the machine's noise, so a ratio taken within a round is steadier than a ratio of two medians), a
// high-resolution timer and the rotation that interleaves variants.

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

/** `items` rotated left by `round` places: round 0 is A B C, round 1 is B C A, … so no variant always goes first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const shift = round % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Formats a number with `digits` decimals, or "n/a" when it is not finite. */
export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Formats a ratio as `1.03×`. */
export function times(value: number): string {
  return `${fixed(value, 2)}×`;
}
