// Runs a built handler bundle in a fresh `node` process, as a Lambda sandbox would: require() it, then call
// `handler` once (cold), N times at once (burst) or N times spread over a duration (spread). The child prints one
// JSON line with its timings (performance.now() counts from the process's start) or exits non-zero.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const RUNNER_SOURCE = `'use strict';
const { performance } = require('node:perf_hooks');
const [bundle, mode, countText, spreadText] = process.argv.slice(2);
const requireStart = performance.now();
const { handler } = require(bundle);
const loaded = performance.now();
const context = { awsRequestId: 'bench', functionName: 'bench', getRemainingTimeInMillis: () => 15000 };
const invoke = async () => {
  const result = await handler({}, context);
  if (!result || result.statusCode !== 200) throw new Error('unexpected response ' + JSON.stringify(result));
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  const count = Number(countText || 1);
  if (mode === 'cold') await invoke();
  else if (mode === 'burst') await Promise.all(Array.from({ length: count }, invoke));
  else if (mode === 'spread') {
    const interval = Number(spreadText) / count;
    for (let i = 0; i < count; i++) {
      await sleep(Math.max(0, loaded + i * interval - performance.now()));
      await invoke();
    }
  } else throw new Error('unknown mode ' + mode);
  const done = performance.now();
  const line = JSON.stringify({ bootMillis: requireStart, loadMillis: loaded - requireStart, firstMillis: done - loaded, totalMillis: done });
  process.stdout.write(line + '\\n', () => process.exit(0));
})().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
`;

/** What the child reports, in milliseconds since its process started (boot) or between marks. */
export interface RunnerTimings {
  /** Process start until the runner began to require the bundle. */
  readonly bootMillis: number;
  /** require() of the bundle: parsing and running its top level. */
  readonly loadMillis: number;
  /** From the end of require() until the handler answered (the whole invocation set for burst and spread). */
  readonly firstMillis: number;
  /** Process start until the handler answered. */
  readonly totalMillis: number;
}

/** Options for {@link runBundle}. */
export interface RunBundleOptions {
  readonly mode: 'cold' | 'burst' | 'spread';
  readonly count?: number;
  readonly spreadMillis?: number;
  /** The child's whole environment (PATH is added). */
  readonly env: Readonly<Record<string, string>>;
}

/** Writes the runner script into `dir` and returns its path. */
export function writeRunner(dir: string): string {
  const file = path.join(dir, 'runner.cjs');
  fs.writeFileSync(file, RUNNER_SOURCE);
  return file;
}

/** Runs `bundle` in a new node process through `runner`; rejects with the child's stderr when it fails. */
export function runBundle(runner: string, bundle: string, options: RunBundleOptions): Promise<RunnerTimings> {
  const args = [runner, bundle, options.mode, String(options.count ?? 1), String(options.spreadMillis ?? 0)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: path.dirname(bundle), env: { PATH: process.env.PATH ?? '', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) return reject(new Error(`node ${bundle} (${options.mode}) exited with ${code}: ${stderr.trim() || stdout.trim()}`));
      resolve(JSON.parse(last) as RunnerTimings);
    });
  });
}
