// Runs a repository script (scripts/*.ts) in a child process through tsx, for end-to-end tests: its output as it
// arrives, a wait for a line, its exit. tsx is started directly rather than through npx or npm, which die at once on
// SIGTERM without waiting for their child, so their exit code would not be the script's.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The repository root, the working directory of every script. */
export const REPO_ROOT = path.resolve(__dirname, '../../../..');
const TSX_CLI = path.join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs');
// Variables the db module and the AWS SDK read: a test sets the ones it means, nothing leaks in from the worker.
const CONFIG_VARIABLE = /^(DB_|DATABASE_URL$|RDS_SECRET_ARN$|AWS_SECRET_NAME$|AWS_ENDPOINT_URL|PORT$)/;

/** A running script. */
export interface ScriptProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on timeout or exit. */
  waitForOutput(pattern: RegExp, timeoutMillis?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The worker's environment without database or endpoint settings, plus `overrides`. */
export function scriptEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !CONFIG_VARIABLE.test(name)));
  return { ...env, ...overrides };
}

/** Starts `node tsx scripts/<script> ...args` in its own process group (so a test can signal the group, as Ctrl-C does). */
export function spawnScript(script: string, args: readonly string[], env: NodeJS.ProcessEnv): ScriptProcess {
  const child = spawn(process.execPath, [TSX_CLI, path.join('scripts', script), ...args], {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let closed = false; // set once the streams are drained too, not merely on exit
  const waiters = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    for (const check of waiters) check();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      closed = true;
      for (const check of waiters) check();
      resolve({ code, signal });
    });
  });
  return {
    child,
    exited,
    output: () => text,
    waitForOutput(pattern, timeoutMillis = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`No output matching ${pattern} within ${timeoutMillis} ms:\n${text}`)), timeoutMillis);
        const finish = (error?: Error, match?: RegExpMatchArray): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(match as RegExpMatchArray);
        };
        const check = (): void => {
          const match = pattern.exec(text);
          if (match) finish(undefined, match);
          else if (closed) finish(new Error(`The script exited before printing ${pattern}:\n${text}`));
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Runs a script to its end and returns its exit code and output. */
export async function runScript(script: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const run = spawnScript(script, args, env);
  const { code } = await run.exited;
  return { code, output: run.output() };
}

/** Kills the script's whole process group if it still runs (for afterEach after a failed test). */
export function killScript(run: ScriptProcess | undefined): void {
  if (!run || run.child.exitCode !== null || run.child.signalCode !== null || run.child.pid === undefined) return;
  try {
    process.kill(-run.child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
