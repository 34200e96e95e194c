// Command-line options of `npm run bench`: the counts of every section (full run by default, a few seconds' worth
// with --quick for the smoke test), each overridable, and where the report goes. Unknown flags and values that are
// not positive integers are rejected with a message naming the flag.
import os from 'node:os';
import path from 'node:path';

/** Everything `npm run bench` can be told. */
export interface BenchOptions {
  /** Interleaved rounds of the per-query and transaction sections. (Default: 40; --quick: 2) */
  readonly rounds: number;
  /** Queries per variant per round. (Default: 1000; --quick: 20) */
  readonly queries: number;
  /** Concurrent callers of the per-query section. (Default: 8) */
  readonly concurrency: number;
  /** Transactions per variant per round. (Default: 100; --quick: 5) */
  readonly transactions: number;
  /** Fresh processes per bundle for cold start. (Default: 56, a multiple of 14 so that the 7 bundles' order is balanced; --quick: 1) */
  readonly processes: number;
  /** Concurrent cold calls for the Secrets Manager count. (Default: 50) */
  readonly burst: number;
  /** The report's path. (Default: docs/benchmarks.md; with --quick, a file in the temporary directory, so that a smoke run never replaces the committed figures) */
  readonly out: string;
}

const REPO_ROOT = path.resolve(__dirname, '../..');
const FULL = { rounds: 40, queries: 1000, concurrency: 8, transactions: 100, processes: 56, burst: 50 };
const QUICK = { ...FULL, rounds: 2, queries: 20, transactions: 5, processes: 1 };
const COUNT_FLAGS = ['rounds', 'queries', 'concurrency', 'transactions', 'processes', 'burst'] as const;

/** Parses `--quick`, `--<count> <n>` and `--out <path>`; throws on anything else. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const counts: Record<(typeof COUNT_FLAGS)[number], number> = { ...(quick ? QUICK : FULL) };
  let out = quick ? path.join(os.tmpdir(), 'lambda-pg-bench-quick.md') : path.join(REPO_ROOT, 'docs/benchmarks.md');
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') continue;
    const value = argv[++i];
    if (flag === '--out' && value) {
      out = path.resolve(value);
      continue;
    }
    const name = flag.replace(/^--/, '') as (typeof COUNT_FLAGS)[number];
    if (!flag.startsWith('--') || !COUNT_FLAGS.includes(name)) {
      throw new Error(`Unknown option ${flag}; expected --quick, --out <path> or --${COUNT_FLAGS.join(' <n>, --')} <n>.`);
    }
    if (!/^[1-9]\d*$/.test(value ?? '')) throw new Error(`Expected ${flag} to be a positive integer, got "${value ?? ''}".`);
    counts[name] = Number(value);
  }
  return { ...counts, out };
}
