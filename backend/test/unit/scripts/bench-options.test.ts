// `npm run bench` options: a full run rewrites docs/benchmarks.md, a --quick smoke run writes to the temporary
// directory unless told otherwise, and a mistyped flag or count is one sentence naming it.
import os from 'node:os';
import path from 'node:path';
import { parseBenchArgs } from '../../../../scripts/bench/options';

describe('parseBenchArgs', () => {
  it('writes a full run to docs/benchmarks.md and a quick one to the temporary directory', () => {
    expect(parseBenchArgs([]).out).toBe(path.resolve(__dirname, '../../../../docs/benchmarks.md'));
    expect(parseBenchArgs(['--quick']).out).toBe(path.join(os.tmpdir(), 'lambda-pg-bench-quick.md'));
    expect(parseBenchArgs(['--quick', '--out', 'x.md']).out).toBe(path.resolve('x.md'));
  });

  it('rejects an unknown flag and a count that is not a positive integer, naming the flag', () => {
    expect(() => parseBenchArgs(['--quik'])).toThrow(/^Unknown option --quik; expected --quick, --out <path> or --rounds <n>/);
    expect(() => parseBenchArgs(['--rounds', '0'])).toThrow('Expected --rounds to be a positive integer, got "0".');
  });
});
