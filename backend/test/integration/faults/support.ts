// Shared by the fault-injection tests: a throwaway database owned by a throwaway login role (not a superuser, as in
// production), DbOptions that reach it over verified TLS or through the TCP fault proxy in plaintext, a way to freeze
// this process as Lambda freezes a sandbox, a barrier, and small helpers to arrange and assert.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type QueryResult, type QueryResultRow } from 'pg';
import type { TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import { createDatabase, type Database, type DbOptions } from '../../../src/shared/db';
import { adminClient, createRole, createTestDatabase, testServer } from '../support/postgres';

/** A database that belongs to its own login role. */
export interface FaultDatabase {
  readonly name: string;
  readonly role: string;
  /** Options for createDatabase(): the role over verified TLS, silent logs, plus `overrides`. */
  options(overrides?: DbOptions): DbOptions;
  /** The same through `proxy` on 127.0.0.1 with TLS off, so that the proxy's hooks see the protocol in plaintext. */
  proxiedOptions(proxy: TcpProxy, overrides?: DbOptions): DbOptions;
  /** A SecretString in the RDS format for the role, with the password it was created with unless another is given. */
  secretString(password?: string): string;
  /** A pg Client connected as the role over verified TLS, outside the module; the caller ends it. */
  connectAsRole(): Promise<Client>;
  /** Runs `sql` as the role, so the tables it creates belong to the role. */
  asOwner(sql: string): Promise<void>;
  /** A superuser query on this database, for arranging and asserting. */
  admin<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
  /** Ends the admin connection and drops the database. */
  drop(): Promise<void>;
}

/** Creates a database named after `prefix` and a login role that owns it. */
export async function createFaultDatabase(prefix: string): Promise<FaultDatabase> {
  const server = testServer();
  const database = await createTestDatabase(prefix);
  const role = `${database.name}_app`;
  const password = crypto.randomBytes(18).toString('base64url');
  await createRole(role, password);
  const admin: Client = await adminClient(database.name);
  await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database.name)} OWNER TO ${admin.escapeIdentifier(role)}`);
  const url = `postgres://${role}:${encodeURIComponent(password)}@${server.host}:${server.port}/${database.name}`;

  return {
    name: database.name,
    role,
    options: (overrides = {}) => ({ databaseUrl: url, sslCaFile: server.caFile, logLevel: 'silent', ...overrides }),
    proxiedOptions: (proxy, overrides = {}) => ({
      databaseUrl: url, host: '127.0.0.1', port: proxy.port, ssl: 'disable', logLevel: 'silent', ...overrides,
    }),
    secretString: (otherPassword = password) => JSON.stringify({
      engine: 'postgres', host: server.host, port: server.port, username: role, password: otherPassword, dbname: database.name,
    }),
    async connectAsRole() {
      const client = new Client({
        host: server.host, port: server.port, user: role, password, database: database.name, ssl: { ca: server.caPem },
      });
      client.on('error', () => undefined); // tests kill sessions on purpose
      await client.connect();
      return client;
    },
    async asOwner(sql) {
      await admin.query(`SET ROLE ${admin.escapeIdentifier(role)}`);
      try {
        await admin.query(sql);
      } finally {
        await admin.query('RESET ROLE');
      }
    },
    admin: (text, values) => admin.query(text, values),
    async drop() {
      await admin.end();
      await database.drop();
    },
  };
}

/** Creates database instances and closes every one of them in {@link closeAll} (call it from afterEach). */
export function databaseTracker(): { open(options: DbOptions): Database; closeAll(): Promise<void> } {
  const open: Database[] = [];
  return {
    open(options) {
      const db = createDatabase(options);
      open.push(db);
      return db;
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((db) => db.close()));
    },
  };
}

/**
 * Runs `sql` as the superuser from a child process and blocks this process until it is done, as Lambda freezes a
 * sandbox: no timer fires and no socket event is read meanwhile, so the pool learns nothing of what the SQL did
 * to its connections until after the thaw.
 */
export function runWhileFrozen(sql: string): void {
  const server = testServer();
  const script = `
    const { Client } = require(process.env.FREEZE_PG_MODULE);
    const fs = require('node:fs');
    const client = new Client({
      host: process.env.FREEZE_HOST, port: Number(process.env.FREEZE_PORT), user: process.env.FREEZE_USER,
      password: process.env.FREEZE_PASSWORD, database: 'postgres',
      ssl: { ca: fs.readFileSync(process.env.FREEZE_CA_FILE, 'utf8'), rejectUnauthorized: true },
    });
    client.connect().then(() => client.query(process.env.FREEZE_SQL)).then(() => client.end()).catch((error) => {
      console.error(error.message);
      process.exit(1);
    });`;
  execFileSync(process.execPath, ['-e', script], {
    env: {
      PATH: process.env.PATH, FREEZE_PG_MODULE: require.resolve('pg'), FREEZE_SQL: sql, FREEZE_HOST: server.host,
      FREEZE_PORT: String(server.port), FREEZE_USER: server.user, FREEZE_PASSWORD: server.password, FREEZE_CA_FILE: server.caFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
  });
}

/** A barrier for `parties` callers: each `arrive()` resolves once all of them have arrived. */
export function createBarrier(parties: number): { arrive(): Promise<void> } {
  let arrived = 0;
  let release!: () => void;
  const everyone = new Promise<void>((resolve) => (release = resolve));
  return {
    arrive() {
      arrived += 1;
      if (arrived === parties) release();
      return everyone;
    },
  };
}

/** Resolves to what `promise` rejected with; fails the test if it resolved. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`Expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMillis`. */
export async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMillis = 10_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMillis;
  while (!(await condition())) {
    if (Date.now() > giveUpAt) throw new Error(`Timed out after ${timeoutMillis} ms waiting until ${what}`);
    await delay(20);
  }
}
