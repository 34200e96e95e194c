// The local stack behind `npm start` and `npm run db:check -- --local`: a persistent embedded PostgreSQL with TLS under
// .local/, an application role (not the superuser) with a generated password, and a local Secrets Manager holding its
// secret in the RDS format. process.env then points the real AWS SDK and the db module at them, as in a deployment.
import fs from 'node:fs';
import path from 'node:path';
import { createDatabase } from '../../backend/src/shared/db';
import { APP_DATABASE, APP_ROLE, ensureAppRole, type ExistingPostgres } from './local-app-role';
import { startLocalPostgres } from './local-postgres';
import { startLocalSecretsManager, type LocalSecretsManager } from './local-secrets-manager';
import { migrate } from './migrate';
import { seedDemoData } from './seed';

/** The git-ignored folder the local run keeps its cluster, CA and passwords in. */
export const LOCAL_DIR = path.resolve(__dirname, '../../.local');
/** The name of the secret the local Secrets Manager serves; DB_SECRET_ID is set to it. */
export const LOCAL_SECRET_ID = 'lambda-pg/local/app';

/** Options for {@link startLocalStack}. */
export interface LocalStackOptions {
  /** (Default: .local/ at the repository root) */
  readonly dir?: string;
  /** Apply the migrations and the demo seed. (Default: true) */
  readonly migrate?: boolean;
  /** Use the PostgreSQL of a local run already active on `dir` instead of refusing to start. (Default: false) */
  readonly reuseRunning?: boolean;
  /** Use this running server instead of the embedded one in `dir`, e.g. a test suite's. (Default: none) */
  readonly postgres?: ExistingPostgres;
  /** Receives PostgreSQL's own log lines. (Default: ignore them) */
  readonly onLog?: (line: string) => void;
}

/** A running local stack; process.env points at it until stop(). */
export interface LocalStack {
  readonly dir: string;
  readonly postgres: { readonly host: string; readonly port: number; readonly dataDir: string; readonly caFile: string };
  readonly secretsManager: LocalSecretsManager;
  readonly secretId: string;
  /** True when PostgreSQL was already running (another local run's, or options.postgres); stop() leaves it running. */
  readonly reused: boolean;
  /** The migration versions this start applied. */
  readonly applied: readonly string[];
  /** Stops the Secrets Manager endpoint and (unless reused) PostgreSQL, keeping the data; restores process.env. */
  stop(): Promise<void>;
}

/** Starts (or joins) the local stack in `options.dir` and points process.env at it. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dir = path.resolve(options.dir ?? LOCAL_DIR);
  const active = options.postgres ? undefined : findActiveRun(dir);
  if (active && !options.reuseRunning) {
    throw new Error(`Another local run (pid ${active.pid}) is using ${dir}: stop it first, or delete ${path.join(dir, 'run.pid')} if none is.`);
  }
  fs.mkdirSync(dir, { recursive: true });
  // PostgreSQL runs as its own OS user when we are root, and must be able to reach postgres/ inside `dir`.
  fs.chmodSync(dir, fs.statSync(dir).mode | 0o711);
  const lockFile = path.join(dir, 'run.pid');
  const owned = !active && !options.postgres;
  if (owned) fs.writeFileSync(lockFile, String(process.pid));
  const undo: Array<() => unknown> = [];
  try {
    let postgres: LocalStack['postgres'];
    let password: string;
    if (active) {
      postgres = active.postgres;
      password = fs.readFileSync(path.join(dir, 'app-password'), 'utf8').trim();
    } else if (options.postgres) {
      postgres = options.postgres;
      password = await ensureAppRole(options.postgres, path.join(dir, 'app-password'));
    } else {
      undo.push(() => fs.rmSync(lockFile, { force: true }));
      const server = await startLocalPostgres({ dir: path.join(dir, 'postgres'), persistent: true, onLog: options.onLog });
      undo.push(() => server.stop());
      postgres = { host: server.host, port: server.port, dataDir: server.dataDir, caFile: server.caFile };
      password = await ensureAppRole(server, path.join(dir, 'app-password'));
    }
    const secretsManager = await startLocalSecretsManager();
    undo.push(() => secretsManager.close());
    const secret = { engine: 'postgres', host: postgres.host, port: postgres.port, username: APP_ROLE, password, dbname: APP_DATABASE };
    secretsManager.putSecretValue(LOCAL_SECRET_ID, JSON.stringify(secret));
    undo.push(pointEnvironmentAt(secretsManager.url, postgres.caFile));
    const applied = options.migrate === false ? [] : await migrateAndSeed();
    let stopping: Promise<void> | undefined;
    return {
      dir, postgres, secretsManager, secretId: LOCAL_SECRET_ID, reused: !owned, applied,
      stop: () => (stopping ??= unwind(undo)),
    };
  } catch (error) {
    await unwind(undo);
    throw error;
  }
}

/** A local run another process (or this one) has active on `dir`: its lock file names a live pid and PostgreSQL runs. */
function findActiveRun(dir: string): { pid: number; postgres: LocalStack['postgres'] } | undefined {
  const dataDir = path.join(dir, 'postgres', 'data');
  const read = (file: string): string | undefined => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
  const pid = Number(read(path.join(dir, 'run.pid')));
  const postmaster = read(path.join(dataDir, 'postmaster.pid'));
  if (!Number.isInteger(pid) || pid <= 0 || !postmaster || !isAlive(pid)) return undefined;
  const port = Number(postmaster.split('\n')[3]); // postmaster.pid: pid, data dir, start time, port, …
  return { pid, postgres: { host: 'localhost', port, dataDir, caFile: path.join(dir, 'postgres', 'tls', 'ca.pem') } };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sets what a deployed function would have (secret id, CA file, SDK endpoint); returns the function that undoes it. */
function pointEnvironmentAt(secretsManagerUrl: string, caFile: string): () => void {
  const env = process.env;
  const values: Record<string, string | undefined> = {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManagerUrl,
    AWS_REGION: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    DB_SECRET_ID: LOCAL_SECRET_ID,
    DB_SSL: 'verify-full',
    DB_SSL_CA_FILE: caFile,
    // These would override the secret's address.
    DB_HOST: undefined,
    DB_PORT: undefined,
    DB_NAME: undefined,
  };
  // The SDK signs every request; the local endpoint does not check the signature.
  if (!env.AWS_ACCESS_KEY_ID) Object.assign(values, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_SESSION_TOKEN: undefined });
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, env[name]]));
  const assign = (entries: Record<string, string | undefined>): void => {
    for (const [name, value] of Object.entries(entries)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
  };
  assign(values);
  return () => assign(saved);
}

/** Applies the migrations and the demo seed as the application role, through the secret, like a deploy step would. */
async function migrateAndSeed(): Promise<string[]> {
  const db = createDatabase();
  try {
    const applied = await migrate(db);
    await seedDemoData(db);
    return applied;
  } finally {
    await db.close();
  }
}

/** Runs the undo steps last first; every step runs even when an earlier one fails, and the first failure is rethrown. */
async function unwind(undo: Array<() => unknown>): Promise<void> {
  let failure: unknown;
  for (const step of undo.splice(0).reverse()) {
    await Promise.resolve().then(step).catch((error: unknown) => (failure ??= error));
  }
  if (failure !== undefined) throw failure;
}
