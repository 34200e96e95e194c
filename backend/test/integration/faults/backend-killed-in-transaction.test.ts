// A backend that dies inside a transaction (pg_terminate_backend, a failover, idle_in_transaction_session_timeout)
// takes its uncommitted work with it, so withTransaction reruns the whole callback on a new connection and the
// work commits exactly once. The checked-out client carries the module's own 'error' listener: without it, the
// death of an idle-in-transaction client is an unhandled 'error' event, which Jest would report against the test.
import crypto from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { PoolClient } from 'pg';
import { ConnectionLostError, type DbOptions } from '../../../src/shared/db';
import { createFaultDatabase, databaseTracker, rejectionOf, waitUntil, type FaultDatabase } from './support';

// Real waits (TTLs, deadlines, timeouts) on a busy machine: allow more than Jest's default 5 s a test.
jest.setTimeout(20_000);

let fault: FaultDatabase;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('killed_tx');
  await fault.asOwner(`
    CREATE TABLE orders (id uuid PRIMARY KEY, attempt int NOT NULL);
    CREATE TABLE order_lines (order_id uuid NOT NULL REFERENCES orders (id), sku text NOT NULL)`);
});

afterEach(() => databases.closeAll());

afterAll(() => fault?.drop());

const open = (options: DbOptions = {}) => databases.open(fault.options({ poolMax: 1, ...options }));

async function backendPid(client: PoolClient): Promise<number> {
  return (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
}

/** Kills a backend and waits until it has exited. */
async function kill(pid: number): Promise<void> {
  await fault.admin('SELECT pg_terminate_backend($1, 5000)', [pid]);
}

interface Committed {
  orders: number;
  lines: number;
  attempt: number | null;
}

async function committed(orderId: string): Promise<Committed> {
  const { rows } = await fault.admin<Committed>(
    `SELECT (SELECT count(*)::int FROM orders WHERE id = $1) AS orders, (SELECT count(*)::int FROM order_lines WHERE order_id = $1) AS lines,
            (SELECT attempt FROM orders WHERE id = $1) AS attempt`,
    [orderId],
  );
  return rows[0];
}

describe('withTransaction when the backend dies before COMMIT', () => {
  it('reruns the whole callback after the backend is killed between two statements, and commits once', async () => {
    const db = open();
    const orderId = crypto.randomUUID();
    const attempts: number[] = [];

    const result = await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, $2)', [orderId, tx.attempt]);
      if (tx.attempt === 1) await kill(await backendPid(client));
      await client.query("INSERT INTO order_lines (order_id, sku) VALUES ($1, 'tea')", [orderId]);
      return `placed on attempt ${tx.attempt}`;
    });

    expect(result).toBe('placed on attempt 2');
    expect(attempts).toEqual([1, 2]);
    expect(await committed(orderId)).toEqual({ orders: 1, lines: 1, attempt: 2 });
  });

  it('reruns the whole callback when the backend dies after its last statement, before COMMIT is sent', async () => {
    const db = open();
    const orderId = crypto.randomUUID();
    const attempts: number[] = [];

    const result = await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, $2)', [orderId, tx.attempt]);
      if (tx.attempt === 1) {
        const lost = new Promise((resolve) => client.once('error', resolve));
        await kill(await backendPid(client));
        await lost; // the client knows its socket is dead before withTransaction sends COMMIT
      }
      return `placed on attempt ${tx.attempt}`;
    });

    expect(result).toBe('placed on attempt 2');
    expect(attempts).toEqual([1, 2]);
    expect(await committed(orderId)).toEqual({ orders: 1, lines: 0, attempt: 2 });
  });

  it('reruns the whole callback when the kill lands while a statement runs', async () => {
    const db = open({ applicationName: 'killed-while-running' });
    const orderId = crypto.randomUUID();
    const seen: unknown[] = [];

    await db.withTransaction(async (client, tx) => {
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, $2)', [orderId, tx.attempt]);
      if (tx.attempt === 1) {
        const pid = await backendPid(client);
        const sleeping = client.query('SELECT pg_sleep(30)').catch((error: unknown) => error);
        await waitUntil(async () => (await fault.admin("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'", [pid])).rowCount === 1, 'the sleep runs');
        await kill(pid);
        seen.push(await sleeping);
        throw seen[0];
      }
      await client.query("INSERT INTO order_lines (order_id, sku) VALUES ($1, 'tea')", [orderId]);
    });

    expect(seen).toEqual([expect.any(ConnectionLostError)]);
    expect(seen[0]).toMatchObject({ ambiguous: false, retryable: true });
    expect(await committed(orderId)).toEqual({ orders: 1, lines: 1, attempt: 2 });
  });

  it('reruns the whole callback after idle_in_transaction_session_timeout ends the session', async () => {
    const db = open({ idleInTransactionTimeoutMillis: 200 });
    const orderId = crypto.randomUUID();
    const attempts: number[] = [];

    await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, $2)', [orderId, tx.attempt]);
      if (tx.attempt === 1) await delay(1000); // five times the timeout: the server ends the session meanwhile
      await client.query("INSERT INTO order_lines (order_id, sku) VALUES ($1, 'tea')", [orderId]);
    });

    expect(attempts).toEqual([1, 2]);
    expect(await committed(orderId)).toEqual({ orders: 1, lines: 1, attempt: 2 });
  });

  it("rethrows the callback's own error, without a rerun, when the backend died before it threw", async () => {
    const db = open();
    const orderId = crypto.randomUUID();
    const own = new Error('no such customer');
    const attempts: number[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, $2)', [orderId, tx.attempt]);
      const lost = new Promise((resolve) => client.once('error', resolve));
      await kill(await backendPid(client));
      await lost;
      throw own;
    }));

    expect(error).toBe(own);
    expect(attempts).toEqual([1]);
    expect(await committed(orderId)).toEqual({ orders: 0, lines: 0, attempt: null });
  });

  it('gives up with a typed error, not a crash, when every attempt loses its backend', async () => {
    const db = open({ maxAttempts: 3 });
    const orderId = crypto.randomUUID();

    const error = await rejectionOf(db.withTransaction(async (client) => {
      await client.query('INSERT INTO orders (id, attempt) VALUES ($1, 0)', [orderId]);
      await kill(await backendPid(client));
      await client.query("INSERT INTO order_lines (order_id, sku) VALUES ($1, 'tea')", [orderId]);
    }));

    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error).toMatchObject({ attempts: 3, ambiguous: false });
    expect(await committed(orderId)).toEqual({ orders: 0, lines: 0, attempt: null });
  });
});
