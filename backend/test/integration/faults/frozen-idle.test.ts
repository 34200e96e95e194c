// Lambda freezes a sandbox between invocations: no timer runs, so pg-pool's idleTimeoutMillis cannot evict a
// connection that the server (or a NAT) closed meanwhile, and the first queries after the thaw meet dead sockets.
// The module tracks when each client was last used by wall clock and, on checkout, discards one idle beyond
// maxIdleMillis and validates one idle beyond validateAfterIdleMillis. An unhandled 'error' event from a dead client
// would fail these tests: Jest reports any uncaught exception against the test that is running.
import { setTimeout as delay } from 'node:timers/promises';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import type { Database, DbOptions, RetryEvent } from '../../../src/shared/db';
import { testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, runWhileFrozen, type FaultDatabase } from './support';

// Real waits (TTLs, deadlines, timeouts) on a busy machine: allow more than Jest's default 5 s a test.
jest.setTimeout(20_000);

const POOL_MAX = 4;
const BURST = 40;

let fault: FaultDatabase;
let proxy: TcpProxy | undefined;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('frozen_idle');
  await fault.asOwner('CREATE TABLE hits (id serial PRIMARY KEY, caller int NOT NULL)');
});

afterEach(async () => {
  await databases.closeAll();
  await proxy?.close();
  proxy = undefined;
  await fault.admin('TRUNCATE hits');
});

afterAll(() => fault?.drop());

/** Opens POOL_MAX connections at once and returns their backend pids. */
async function warm(db: Database): Promise<number[]> {
  const results = await Promise.all(Array.from({ length: POOL_MAX }, () => db.query('SELECT pg_backend_pid() AS pid')));
  return results.map((result) => result.rows[0].pid as number);
}

/** Idles past `idleMillis` (timers may run: pg-pool's own idle timeout is far longer), then kills every session while frozen. */
async function freezeAndKill(applicationName: string, idleMillis: number): Promise<void> {
  await delay(idleMillis);
  runWhileFrozen(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = '${applicationName}'`);
}

async function pidsAlive(pids: number[]): Promise<number> {
  const { rows } = await fault.admin<{ alive: number }>('SELECT count(*)::int AS alive FROM pg_stat_activity WHERE pid = ANY($1)', [pids]);
  return rows[0].alive;
}

function open(applicationName: string, options: DbOptions): Database {
  return databases.open(fault.options({ applicationName, poolMax: POOL_MAX, ...options }));
}

describe('a pool whose idle connections the server killed while the sandbox was frozen', () => {
  it('discards connections idle beyond maxIdleMillis and serves a burst of writes without a failure', async () => {
    const db = open('frozen-max-idle', { maxIdleMillis: 250, validateAfterIdleMillis: 60_000 });
    const before = await warm(db);
    await freezeAndKill('frozen-max-idle', 400);

    const burst = await Promise.allSettled(Array.from({ length: BURST }, (_, caller) => db.query('INSERT INTO hits (caller) VALUES ($1) RETURNING pg_backend_pid() AS pid', [caller])));

    const failed = burst.filter((outcome) => outcome.status === 'rejected');
    expect(new Set(before).size).toBe(POOL_MAX);
    expect(failed).toEqual([]);
    expect(await pidsAlive(before)).toBe(0);
    const { rows } = await fault.admin('SELECT count(DISTINCT caller)::int AS callers, count(*)::int AS total FROM hits');
    expect(rows[0]).toEqual({ callers: BURST, total: BURST });
  });

  it('validates connections idle beyond validateAfterIdleMillis and replaces the dead ones before a write or a BEGIN', async () => {
    const db = open('frozen-validate', { maxIdleMillis: 60_000, validateAfterIdleMillis: 100 });
    await warm(db);
    await freezeAndKill('frozen-validate', 300);

    const burst = await Promise.allSettled(Array.from({ length: BURST }, (_, caller) =>
      caller % 2 === 0
        ? db.query('INSERT INTO hits (caller) VALUES ($1)', [caller])
        : db.withTransaction((client) => client.query('INSERT INTO hits (caller) VALUES ($1)', [caller])),
    ));

    expect(burst.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    const { rows } = await fault.admin('SELECT count(DISTINCT caller)::int AS callers, count(*)::int AS total FROM hits');
    expect(rows[0]).toEqual({ callers: BURST, total: BURST });
  });

  it('validates connections that were opened and last used through getPool() too', async () => {
    const db = open('frozen-raw-pool', { maxIdleMillis: 60_000, validateAfterIdleMillis: 100 });
    const pool = await db.getPool();
    await Promise.all(Array.from({ length: POOL_MAX }, () => pool.query('SELECT pg_sleep(0.05)')));
    await freezeAndKill('frozen-raw-pool', 300);

    const writes = await Promise.allSettled(Array.from({ length: POOL_MAX }, (_, caller) => db.query('INSERT INTO hits (caller) VALUES ($1)', [caller])));

    expect(writes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    const { rows } = await fault.admin('SELECT count(*)::int AS total FROM hits');
    expect(rows[0].total).toBe(POOL_MAX);
  });

  it('retries idempotent reads, which skip validation, after they meet a dead connection', async () => {
    const retries: RetryEvent[] = [];
    const db = open('frozen-idempotent', { maxIdleMillis: 60_000, validateAfterIdleMillis: 100, hooks: { onRetry: (event) => retries.push(event) } });
    await warm(db);
    await freezeAndKill('frozen-idempotent', 300);

    const burst = await Promise.allSettled(Array.from({ length: BURST }, (_, n) => db.query('SELECT $1::int AS n', [n], { idempotent: true })));

    expect(burst.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries.length).toBeLessThanOrEqual(POOL_MAX);
    expect(retries.every((event) => event.errorCode === 'DB_CONNECTION_LOST')).toBe(true);
  });

  it('survives connections a NAT reset during the freeze, whose socket errors surface while they are validated', async () => {
    proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
    const db = databases.open(fault.proxiedOptions(proxy, { applicationName: 'frozen-reset', poolMax: POOL_MAX, maxIdleMillis: 60_000, validateAfterIdleMillis: 100 }));
    await warm(db);
    await delay(300);

    // The resets reach the pool's sockets only after this synchronous block, as they would after a thaw.
    proxy.resetAll();
    const burst = await Promise.allSettled(Array.from({ length: BURST }, (_, caller) => db.query('INSERT INTO hits (caller) VALUES ($1)', [caller])));

    expect(burst.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    const { rows } = await fault.admin('SELECT count(DISTINCT caller)::int AS callers, count(*)::int AS total FROM hits');
    expect(rows[0]).toEqual({ callers: BURST, total: BURST });
  });
});
