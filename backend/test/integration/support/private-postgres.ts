// A PostgreSQL of one test file's own, for faults that would hurt other test files on the shared server (a restart
// cuts every session on it). It runs in a child process (see private-postgres-child.ts); stop() ends it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** The private server's facts; `password` is the superuser's. */
export interface PrivatePostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly dataDir: string;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

/** Starts a private PostgreSQL (TLS on, like the shared one) in a temporary directory; takes a second or two. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-private-'));
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, 'private-postgres-child.ts'), dir], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const firstLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`The private PostgreSQL did not start (exit ${code}): ${stderr.join('')}`)));
  });
  const facts = JSON.parse(firstLine) as Omit<PrivatePostgres, 'stop'>;
  const server: PrivatePostgres = {
    ...facts,
    async stop() {
      child.stdin.end();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return Object.defineProperty(server, 'password', { enumerable: false });
}
