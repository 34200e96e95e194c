// A minimal migration runner for backend/migrations/NNN_name.sql: each migration in its own transaction, recorded in
// schema_migrations with a SHA-256 checksum, under pg_advisory_xact_lock so concurrent runners (two deploys, two
// Lambda cold starts) apply each migration once. An applied file that was edited, or one missing on disk, is refused.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { QueryConfig } from 'pg';
import type { Database } from '../../backend/src/shared/db';

/** One migration file. */
export interface Migration {
  /** The numeric prefix, e.g. "001". */
  readonly version: string;
  readonly name: string;
  readonly sql: string;
  /** SHA-256 of the file with line endings normalized, so a checkout with CRLF does not count as an edit. */
  readonly checksum: string;
}

/** Options for {@link migrate}. */
export interface MigrateOptions {
  /** (Default: backend/migrations) */
  readonly dir?: string;
  /** Server-side statement_timeout of each migration. (Default: 300000) */
  readonly statementTimeoutMillis?: number;
  /** lock_timeout of each migration, so DDL waiting on a busy table fails instead of stalling traffic. (Default: 10000) */
  readonly lockTimeoutMillis?: number;
  /** Called once per migration applied. (Default: none) */
  readonly onApplied?: (migration: Migration) => void;
}

/** A migration set that cannot be applied safely; the message says which file and why. */
export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/** The directory the runner reads by default. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '../../backend/migrations');

// An arbitrary constant shared by every runner of this project; only runners of the same key exclude each other.
const LOCK_KEY = 7_245_118_093;
/** How much longer than the server's statement_timeout the client waits for an answer: the server decides. */
const CLIENT_MARGIN_MILLIS = 5000;
const FILE_NAME = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/;
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;

/** Reads and orders the migration files of `dir`; a .sql file that does not follow NNN_name.sql is an error. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations = fs.readdirSync(dir).filter((file) => file.endsWith('.sql')).map((file) => {
    const match = FILE_NAME.exec(file);
    if (!match) throw new MigrationError(`Migration file ${file} must be named NNN_name.sql (digits, underscore, letters).`);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8').replace(/\r\n/g, '\n');
    return { version: match[1], name: match[2], sql, checksum: crypto.createHash('sha256').update(sql).digest('hex') };
  });
  migrations.sort((a, b) => Number(a.version) - Number(b.version));
  for (let i = 1; i < migrations.length; i++) {
    if (Number(migrations[i].version) === Number(migrations[i - 1].version)) {
      throw new MigrationError(`Migrations ${migrations[i - 1].version}_${migrations[i - 1].name} and ${migrations[i].version}_${migrations[i].name} share a version number.`);
    }
  }
  return migrations;
}

/** Picks the next migration to apply after checking what the database records against the files. */
export function nextPending(applied: ReadonlyArray<{ version: string; checksum: string }>, migrations: readonly Migration[]): Migration | undefined {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (!file) throw new MigrationError(`Migration ${row.version} is applied but has no file; is this checkout older than the database?`);
    if (file.checksum !== row.checksum) {
      throw new MigrationError(`Migration ${row.version}_${file.name} was edited after it was applied (checksum differs); restore it and add a new migration instead.`);
    }
  }
  const done = new Set(applied.map((row) => row.version));
  const pending = migrations.find((m) => !done.has(m.version));
  const newest = applied.reduce((max, row) => Math.max(max, Number(row.version)), -1);
  if (pending && Number(pending.version) < newest) {
    throw new MigrationError(`Migration ${pending.version}_${pending.name} is pending but a later one is already applied; renumber it after ${newest}.`);
  }
  return pending;
}

/** Applies every pending migration in order, one transaction each; returns the versions it applied. */
export async function migrate(db: Pick<Database, 'withTransaction'>, options: MigrateOptions = {}): Promise<string[]> {
  const migrations = loadMigrations(options.dir);
  const statementTimeoutMillis = options.statementTimeoutMillis ?? 300_000;
  const lockTimeoutMillis = options.lockTimeoutMillis ?? 10_000;
  // The database's own client timeout (its statement timeout + 2 s) is meant for requests: the long statements here
  // (waiting for another runner's lock, the migration itself) carry their own, above the server's statement_timeout,
  // so the server cancels a statement that runs too long (57014, definitive) rather than the client abandoning it
  // while it still holds its locks.
  const queryTimeoutMillis = Math.trunc(statementTimeoutMillis) + CLIENT_MARGIN_MILLIS;
  const applied: string[] = [];
  for (;;) {
    // Each round takes the lock, rereads the table and applies at most one file, so a runner that waited for
    // another sees what that one did.
    let attempted: Migration | undefined;
    const migration = await db.withTransaction(async (client) => {
      await client.query(`SET LOCAL statement_timeout = ${Math.trunc(statementTimeoutMillis)}`);
      await client.query({ text: 'SELECT pg_advisory_xact_lock($1)', values: [LOCK_KEY], query_timeout: queryTimeoutMillis } as QueryConfig);
      await client.query(CREATE_TABLE);
      const { rows } = await client.query<{ version: string; checksum: string }>('SELECT version, checksum FROM schema_migrations');
      const pending = nextPending(rows, migrations);
      if (!pending) return undefined;
      await client.query(`SET LOCAL lock_timeout = ${Math.trunc(lockTimeoutMillis)}`);
      attempted = pending;
      await client.query({ text: pending.sql, query_timeout: queryTimeoutMillis } as QueryConfig);
      await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [pending.version, pending.name, pending.checksum]);
      return pending;
    }, { deadline: Date.now() + 2 * queryTimeoutMillis + lockTimeoutMillis, retryOnLockNotAvailable: true }).catch((err: unknown) => {
      // Named once the retries are over (wrapping it inside the callback would stop a retryable error being retried).
      if (!attempted || !(err instanceof Error)) throw err;
      throw new MigrationError(`Migration ${attempted.version}_${attempted.name} failed and was rolled back: ${err.name}: ${err.message}`, { cause: err });
    });
    if (!migration) return applied;
    applied.push(migration.version);
    options.onApplied?.(migration);
  }
}
