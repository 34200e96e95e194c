import { pairedRatio, pairedRatioInterval, roundOrder } from '../../../scripts/bench/stats';

/** How often each ordered pair (a directly before b) and each (item, position) occur over `rounds` rounds. */
function tally(n: number, rounds: number): { pairs: Map<string, number>; positions: Map<string, number> } {
  const items = Array.from({ length: n }, (_, i) => String.fromCharCode(65 + i));
  const pairs = new Map<string, number>();
  const positions = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const order = roundOrder(items, round);
    expect([...order].sort()).toEqual(items);
    order.forEach((item, position) => positions.set(`${item}${position}`, (positions.get(`${item}${position}`) ?? 0) + 1));
    for (let i = 1; i < n; i++) pairs.set(order[i - 1] + order[i], (pairs.get(order[i - 1] + order[i]) ?? 0) + 1);
  }
  return { pairs, positions };
}

describe('roundOrder', () => {
  it.each([2, 4, 6])('puts every item after every other exactly once over %i rounds', (n) => {
    const { pairs, positions } = tally(n, n);

    expect(pairs.size).toBe(n * (n - 1));
    expect(new Set(pairs.values())).toEqual(new Set([1]));
    expect(positions.size).toBe(n * n);
  });

  it.each([3, 5, 7])('balances an odd count of %i items over twice as many rounds', (n) => {
    const { pairs, positions } = tally(n, 2 * n);

    expect(pairs.size).toBe(n * (n - 1));
    expect(new Set(pairs.values())).toEqual(new Set([2]));
    expect(new Set(positions.values())).toEqual(new Set([2]));
  });

  it('does not keep a fixed neighbour, as a rotation would', () => {
    const before = new Set<string>();
    for (let round = 0; round < 4; round++) {
      const order = roundOrder(['A', 'B', 'C', 'D'], round);
      const at = order.indexOf('A');
      if (at > 0) before.add(order[at - 1]);
    }

    expect(before.size).toBeGreaterThan(1);
  });
});

describe('pairedRatioInterval', () => {
  it('brackets the median ratio with order statistics of the per-round ratios', () => {
    const b = Array.from({ length: 100 }, () => 10);
    const a = Array.from({ length: 100 }, (_, i) => 10 + i / 10);

    const [low, high] = pairedRatioInterval(a, b);

    expect(low).toBeLessThan(pairedRatio(a, b));
    expect(high).toBeGreaterThan(pairedRatio(a, b));
    expect(low).toBeCloseTo(1.39, 5);
    expect(high).toBeCloseTo(1.6, 5);
  });

  it('gives no interval for fewer than 6 rounds, which order statistics cannot cover at 95 %', () => {
    expect(pairedRatioInterval([3, 3, 3, 3, 3], [2, 2, 2, 2, 2])).toEqual([NaN, NaN]);
    expect(pairedRatioInterval([3, 3, 3, 3, 3, 3], [2, 2, 2, 2, 2, 2])).toEqual([1.5, 1.5]);
  });
});
