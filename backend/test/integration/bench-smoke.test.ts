// `npm run bench` with tiny counts (--quick), its report written to a temporary file instead of docs/: proves the
// script runs end to end against its own PostgreSQL and Secrets Manager endpoint and writes every section. A
// benchmark is not a test, so no figure is asserted.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Runs scripts/bench.ts through tsx, as `npm run bench -- <args>` does; resolves with its exit code and output. */
function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), ['scripts/bench.ts', ...args], { cwd: REPO_ROOT, env: process.env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** How many table rows of `report` have a cell that is exactly `name`. */
function rowsNaming(report: string, name: string): number {
  const rows = report.split('\n').filter((line) => line.startsWith('|'));
  return rows.filter((row) => row.split('|').some((cell) => cell.trim() === name)).length;
}

describe('npm run bench', () => {
  it('runs with tiny counts and reports every section, with rows for ours, the raw driver and both peers', async () => {
    const out = path.join(dir, 'benchmarks.md');

    const { code, output } = await runBench(['--quick', '--out', out]);

    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const report = fs.readFileSync(out, 'utf8');
    expect(report.split('\n').filter((line) => line.startsWith('## '))).toEqual([
      '## Setup',
      '## Targets',
      '## 1. Per-query overhead',
      '## 2. Transaction overhead',
      '## 3. Cold start',
      '## 4. Bundle size',
      '## 5. Secrets Manager calls',
    ]);
    expect(report).toMatch(/^\| command +\| `npm run bench -- --quick --out .+` +\|$/m);
    const names = ['lambda-pg query()', 'pg Pool, pool.query()', 'pg.Client, client.query()', 'separate raw pg Pool', 'lambda-pg', 'minimal (pg + GetSecretValue)', 'Powertools getSecret'];
    expect(names.map((name) => [name, rowsNaming(report, name)])).toEqual([
      ['lambda-pg query()', 3], // 1 and 8 callers, and without the network
      ['pg Pool, pool.query()', 3],
      ['pg.Client, client.query()', 3],
      ['separate raw pg Pool', 2],
      ['lambda-pg', 5], // cold start and bundle size in both SDK modes, Secrets Manager calls
      ['minimal (pg + GetSecretValue)', 5],
      ['Powertools getSecret', 5],
    ]);
  }, 120_000);

  it('rejects an unknown option before starting anything', async () => {
    const { code, output } = await runBench(['--warp-speed', '9']);

    expect(code).toBe(2);
    expect(output).toContain('Benchmark failed: Unknown option --warp-speed');
    expect(output).not.toMatch(/\n\s+at /); // a usage mistake prints no stack trace
  });
});
