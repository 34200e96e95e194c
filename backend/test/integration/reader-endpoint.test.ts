// Reader endpoints (DB_READER_HOST): read-only work goes to a second, real PostgreSQL; writes never do; when the reader
// is unreachable reads fall back to the writer, logged once. The servers are told apart with inet_server_port().
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { createDatabase, Database, DbLogger, DeadlineExceededError } from '../../src/shared/db';
import { createRole, createTestDatabase, testServer } from './support/postgres';
import { PrivatePostgres, startPrivatePostgres } from './support/private-postgres';

const writer = testServer();
let reader: PrivatePostgres;
let dbName: string;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];

function database(logger?: DbLogger, readerPort?: number): Database {
  const db = createDatabase({
    databaseUrl: `postgres://reader_test:reader-pass@${writer.host}:${writer.port}/${dbName}`,
    readerHost: 'localhost',
    readerPort: readerPort ?? reader.port,
    // Each test server has its own generated CA, so trust both.
    sslCa: `${writer.caPem}\n${reader.caPem}`,
    logger,
    logLevel: logger ? 'warn' : 'silent',
    connectTimeoutMillis: 1000,
  });
  open.push(db);
  return db;
}

const port = async (db: Database, readOnly: boolean) => (await db.query('SELECT inet_server_port() AS port', [], { readOnly })).rows[0].port;

beforeAll(async () => {
  ({ name: dbName, drop: dropDatabase } = await createTestDatabase('reader'));
  await createRole('reader_test', 'reader-pass');
  reader = await startPrivatePostgres();
  const admin = new Client({ host: reader.host, port: reader.port, user: reader.user, password: reader.password, ssl: { ca: reader.caPem } });
  await admin.connect();
  await admin.query("CREATE ROLE reader_test LOGIN PASSWORD 'reader-pass'");
  await admin.query(`CREATE DATABASE ${dbName} OWNER reader_test`);
  await admin.end();
}, 60_000);

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await reader?.stop();
  await dropDatabase?.();
});

describe('reader endpoints', () => {
  it('sends read-only queries and transactions to the reader and everything else to the writer', async () => {
    const db = database();

    const readPort = await port(db, true);
    const writePort = await port(db, false);
    const readTxPort = await db.withTransaction(async (c) => (await c.query('SELECT inet_server_port() AS port')).rows[0].port, { readOnly: true });
    const writeTxPort = await db.withTransaction(async (c) => (await c.query('SELECT inet_server_port() AS port')).rows[0].port);

    expect(readPort).toBe(reader.port);
    expect(readTxPort).toBe(reader.port);
    expect(writePort).toBe(writer.port);
    expect(writeTxPort).toBe(writer.port);
  });

  it('reports the reader in healthCheck(), probed on its own pool', async () => {
    const db = database();

    const report = await db.healthCheck();

    expect(report.reader).toEqual({ ok: true, latencyMillis: expect.any(Number) });
    expect(report.readerPool).toMatchObject({ total: 1 });
  });

  it('does not mark the reader down for a read that came with its deadline already passed', async () => {
    const warnings: string[] = [];
    const logger: DbLogger = { info: () => undefined, warn: (message) => warnings.push(message), error: () => undefined };
    const db = database(logger);

    const late = await db.query('SELECT 1', [], { readOnly: true, deadline: Date.now() - 1 }).catch((e: unknown) => e);
    const next = await port(db, true);

    expect(late).toBeInstanceOf(DeadlineExceededError);
    expect(next).toBe(reader.port);
    expect(warnings.filter((w) => /reader endpoint is unreachable/.test(w))).toHaveLength(0);
  });

  it('falls back to the writer for reads while the reader is unreachable, and logs it once', async () => {
    const warnings: string[] = [];
    const logger: DbLogger = { info: () => undefined, warn: (message) => warnings.push(message), error: () => undefined };
    const db = database(logger);
    await reader.stop();

    const ports = [await port(db, true), await port(db, true), await port(db, true)];

    expect(ports).toEqual([writer.port, writer.port, writer.port]);
    expect(warnings.filter((w) => /reader endpoint is unreachable/.test(w))).toHaveLength(1);
  });

  it('marks a reader that never answers as down even when the deadline is shorter than the connect timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const warnings: string[] = [];
      const logger: DbLogger = { info: () => undefined, warn: (message) => warnings.push(message), error: () => undefined };
      const db = database(logger, (silent.address() as AddressInfo).port);
      const read = () => db.query('SELECT inet_server_port() AS port', [], { readOnly: true, deadline: Date.now() + 600 });

      const first = await read().catch((e: unknown) => e);
      const second = await read();

      const report = await db.healthCheck({ deadline: Date.now() + 600 });

      expect(first).toBeInstanceOf(DeadlineExceededError);
      expect(second.rows[0].port).toBe(writer.port);
      expect(warnings.filter((w) => /reader endpoint is unreachable/.test(w))).toHaveLength(1);
      expect(report).toMatchObject({ serverVersion: expect.any(String), reader: { ok: false, error: 'DB_DEADLINE_EXCEEDED' } });
    } finally {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
