// Helpers for integration tests against the shared local PostgreSQL that global-setup.ts started: its facts (from the
// TEST_PG_* variables), superuser clients over verified TLS, throwaway databases and roles, a server restart, and a
// way to kill sessions.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Client } from 'pg';
import { restartPostgresAt } from '../../../../scripts/lib/local-postgres';

/** The shared server as the test workers see it; `password` is the superuser's and is not enumerable. */
export interface TestServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly otherCaFile: string;
  readonly otherCaPem: string;
  readonly dataDir: string;
}

/** Reads the shared server's facts from the TEST_PG_* variables; throws when the global setup did not run. */
export function testServer(): TestServer {
  const read = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run this test in Jest's integration project, whose setup sets it`);
    return value;
  };
  const server = {
    host: read('TEST_PG_HOST'),
    port: Number(read('TEST_PG_PORT')),
    user: read('TEST_PG_USER'),
    password: read('TEST_PG_PASSWORD'),
    caFile: read('TEST_PG_CA_FILE'),
    caPem: fs.readFileSync(read('TEST_PG_CA_FILE'), 'utf8'),
    otherCaFile: read('TEST_PG_OTHER_CA_FILE'),
    otherCaPem: fs.readFileSync(read('TEST_PG_OTHER_CA_FILE'), 'utf8'),
    dataDir: read('TEST_PG_DATA_DIR'),
  };
  return Object.defineProperty(server, 'password', { enumerable: false });
}

/** A connected superuser `pg.Client` on `database` over TLS verified against the local CA; the caller ends it. */
export async function adminClient(database = 'postgres'): Promise<Client> {
  const server = testServer();
  const client = new Client({
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database,
    ssl: { ca: server.caPem, rejectUnauthorized: true },
    application_name: 'integration-admin',
  });
  // An idle client whose session dies (a restart, terminateBackends) emits 'error'; unheard, it would crash the worker.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A database to use and throw away. */
export interface TestDatabase {
  readonly name: string;
  /** Drops it, terminating sessions still connected to it. */
  drop(): Promise<void>;
}

/** Creates a database with a unique name starting with `prefix` (lowercased, other characters become `_`). */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const safePrefix = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 40);
  const name = `${safePrefix}_${crypto.randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  return {
    name,
    async drop() {
      await withAdminClient((client) =>
        client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}

/** Creates a login role (not a superuser) with `password`. */
export async function createRole(name: string, password: string): Promise<void> {
  await withAdminClient((client) =>
    client.query(`CREATE ROLE ${client.escapeIdentifier(name)} LOGIN PASSWORD ${client.escapeLiteral(password)}`),
  );
}

/** Changes a role's password, as a credential rotation does; open sessions stay logged in. */
export async function setRolePassword(name: string, password: string): Promise<void> {
  await withAdminClient((client) =>
    client.query(`ALTER ROLE ${client.escapeIdentifier(name)} PASSWORD ${client.escapeLiteral(password)}`),
  );
}

/** Restarts the shared server (fast shutdown: every session is cut); resolves once it accepts connections again. */
export async function restartServer(): Promise<void> {
  await restartPostgresAt(testServer().dataDir);
}

/** Which sessions {@link terminateBackends} kills; both given means both must match. */
export interface BackendFilter {
  readonly applicationName?: string;
  readonly database?: string;
}

/** Kills the client sessions matching `where` (never the caller's own) with pg_terminate_backend; returns how many. */
export async function terminateBackends(where: BackendFilter): Promise<number> {
  if (where.applicationName === undefined && where.database === undefined) {
    throw new Error('Expected `applicationName` or `database`: other test files share this server');
  }
  // In the target list, not the WHERE clause, so that it runs only on rows that passed every filter; the timeout
  // makes it wait until each session has really gone.
  const result = await withAdminClient((client) =>
    client.query<{ terminated: boolean }>(
      `SELECT pg_terminate_backend(pid, 5000) AS terminated FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND ($1::text IS NULL OR application_name = $1) AND ($2::text IS NULL OR datname = $2)`,
      [where.applicationName ?? null, where.database ?? null],
    ),
  );
  return result.rows.filter((row) => row.terminated).length;
}

async function withAdminClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = await adminClient();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
