// Two timeouts, two meanings. The server's statement_timeout (57014) is a definitive ERROR: the statement was
// cancelled and the connection is fine, so it is kept. pg's client query_timeout cancels nothing on the server: the
// backend stays busy and the next query on that client would time out too, so the client is destroyed; outside a
// transaction the statement's outcome is unknown, inside one the whole transaction reruns.
import type { PoolClient } from 'pg';
import { QueryTimeoutError, StatementTimeoutError } from '../../../src/shared/db';
import { createFaultDatabase, databaseTracker, rejectionOf, type FaultDatabase } from './support';

let fault: FaultDatabase;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('timeouts');
  await fault.asOwner('CREATE TABLE marks (attempt int NOT NULL)');
});

afterEach(() => databases.closeAll());

afterAll(() => fault?.drop());

const PID_SQL = 'SELECT pg_backend_pid() AS pid';
const pidOf = async (client: PoolClient): Promise<number> => (await client.query(PID_SQL)).rows[0].pid;

describe('statement_timeout (57014)', () => {
  it('throws StatementTimeoutError without a retry and keeps the connection', async () => {
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 200 }));
    const before = (await db.query(PID_SQL)).rows[0].pid;

    const error = await rejectionOf(db.query('SELECT pg_sleep(5)'));
    const after = (await db.query(PID_SQL)).rows[0].pid;

    expect(error).toBeInstanceOf(StatementTimeoutError);
    expect(error).toMatchObject({ sqlState: '57014', retryable: false, ambiguous: false, attempts: 1 });
    expect(after).toBe(before);
  });
});

describe("pg's client query_timeout", () => {
  it('throws QueryTimeoutError (outcome unknown) without a retry and destroys the client', async () => {
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 300 }));
    const before = (await db.query(PID_SQL)).rows[0].pid;

    const startedAt = Date.now();
    const error = await rejectionOf(db.query('SELECT pg_sleep(5)'));
    const millis = Date.now() - startedAt;
    const after = (await db.query(PID_SQL)).rows[0].pid;

    expect(error).toBeInstanceOf(QueryTimeoutError);
    expect(error).toMatchObject({ ambiguous: true, retryable: false, attempts: 1 });
    expect(millis).toBeLessThan(300 + 1000); // generous: timers run late on a busy machine
    expect(after).not.toBe(before); // the old backend is still sleeping: reusing it would time out again
  });

  it('reruns the whole transaction on a new connection when it fires inside one', async () => {
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 300 }));
    const pids: number[] = [];

    await db.withTransaction(async (client, tx) => {
      pids.push(await pidOf(client));
      await client.query('INSERT INTO marks (attempt) VALUES ($1)', [tx.attempt]);
      if (tx.attempt === 1) await client.query('SELECT pg_sleep(5)');
    });

    expect(pids).toHaveLength(2);
    expect(pids[1]).not.toBe(pids[0]);
    const { rows } = await fault.admin('SELECT attempt FROM marks');
    expect(rows).toEqual([{ attempt: 2 }]);
  });

  it('does not commit a transaction whose callback caught the timeout and sent the write again', async () => {
    await fault.asOwner('DELETE FROM marks'); // not TRUNCATE: it would wait for the backend an earlier test left sleeping
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 500 }));
    const caught: unknown[] = [];

    await db.withTransaction(async (client, tx) => {
      try {
        // The first attempt's INSERT times out on the client but goes on running on the server for 0.2 s more;
        // the INSERT sent again runs after it, well within its own timeout.
        await client.query(`INSERT INTO marks (attempt) SELECT $1 FROM pg_sleep(${tx.attempt === 1 ? 0.7 : 0})`, [tx.attempt]);
      } catch (err) {
        caught.push(err);
        await client.query('INSERT INTO marks (attempt) VALUES ($1)', [tx.attempt]);
      }
    });

    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(QueryTimeoutError);
    const { rows } = await fault.admin('SELECT attempt FROM marks');
    expect(rows).toEqual([{ attempt: 2 }]);
  });

  it('reruns, rather than failing with it, a transaction whose write sent again after a caught timeout met the first one\'s row', async () => {
    await fault.asOwner('CREATE TABLE IF NOT EXISTS keyed (id int PRIMARY KEY, attempt int NOT NULL); DELETE FROM keyed');
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 500 }));
    const attempts: number[] = [];

    await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      try {
        await client.query(`INSERT INTO keyed (id, attempt) SELECT 1, $1 FROM pg_sleep(${tx.attempt === 1 ? 0.7 : 0})`, [tx.attempt]);
      } catch {
        await client.query('INSERT INTO keyed (id, attempt) VALUES (1, $1)', [tx.attempt]); // a unique violation
      }
    });

    expect(attempts).toEqual([1, 2]);
    expect((await fault.admin('SELECT id, attempt FROM keyed')).rows).toEqual([{ id: 1, attempt: 2 }]);
  });

  it('does not commit a transaction whose statement timed out through a callback given in the config object', async () => {
    await fault.asOwner('DELETE FROM marks'); // not TRUNCATE: it would wait for the backend an earlier test left sleeping
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 500 }));
    const attempts: number[] = [];

    await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      const text = `INSERT INTO marks (attempt) SELECT ${tx.attempt} FROM pg_sleep(${tx.attempt === 1 ? 0.7 : 0})`;
      await new Promise<void>((resolve) => void client.query({ text, callback: () => resolve() } as never));
    });

    expect(attempts).toEqual([1, 2]);
    const { rows } = await fault.admin('SELECT attempt FROM marks');
    expect(rows).toEqual([{ attempt: 2 }]);
  });

  it('rethrows the callback\'s own error after a caught timeout, on a destroyed connection, without a rerun', async () => {
    await fault.asOwner('DELETE FROM marks'); // not TRUNCATE: it would wait for the backend an earlier test left sleeping
    const db = databases.open(fault.options({ poolMax: 1, statementTimeoutMillis: 10_000, queryTimeoutMillis: 300 }));
    const own = new Error('not found');
    let runs = 0;
    const before = (await db.query(PID_SQL)).rows[0].pid;

    const error = await rejectionOf(db.withTransaction(async (client) => {
      runs++;
      await client.query('INSERT INTO marks (attempt) SELECT 1 FROM pg_sleep(0.6)').catch(() => undefined);
      throw own;
    }));
    const after = (await db.query(PID_SQL)).rows[0].pid;

    expect(error).toBe(own);
    expect(runs).toBe(1);
    expect(after).not.toBe(before);
    await new Promise((resolve) => setTimeout(resolve, 800)); // the abandoned INSERT has finished by now
    expect((await fault.admin('SELECT attempt FROM marks')).rows).toEqual([]);
  });
});
