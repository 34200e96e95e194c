// A server ERROR is definitive: the statement had no effect. Most are the caller's to handle and are never retried
// (constraint violations, 25P02, syntax and data errors), and the connection is kept. Two are retried on a new
// connection because the connection itself is the problem: 25006 on a read-write operation (failover left the
// session on a demoted writer). 55P03 lock_not_available is retried only when the caller opts in.
import type { Client } from 'pg';
import {
  CheckViolationError, ForeignKeyViolationError, LockNotAvailableError, NotNullViolationError, QueryError,
  ReadOnlyConnectionError, TransactionAbortedError, UniqueViolationError, type QueryEvent, type RetryEvent,
} from '../../../src/shared/db';
import { createFaultDatabase, databaseTracker, rejectionOf, type FaultDatabase } from './support';

let fault: FaultDatabase;
const databases = databaseTracker();
let retries: RetryEvent[];
let queries: QueryEvent[];
const hooks = { onRetry: (event: RetryEvent) => retries.push(event), onQuery: (event: QueryEvent) => queries.push(event) };

beforeAll(async () => {
  fault = await createFaultDatabase('definitive');
  await fault.asOwner(`
    CREATE TABLE customers (email text PRIMARY KEY);
    CREATE TABLE orders (id int PRIMARY KEY, email text NOT NULL REFERENCES customers (email), total int CHECK (total >= 0));
    INSERT INTO customers VALUES ('a@example.com');
    INSERT INTO orders VALUES (1, 'a@example.com', 10)`);
});

beforeEach(() => {
  retries = [];
  queries = [];
});

afterEach(() => databases.closeAll());

afterAll(() => fault?.drop());

const open = (applicationName = 'definitive') => databases.open(fault.options({ applicationName, poolMax: 1, hooks }));
const PID_SQL = 'SELECT pg_backend_pid() AS pid';

describe('constraint violations', () => {
  it.each([
    ['23505', 'UniqueViolationError', UniqueViolationError, "INSERT INTO customers VALUES ('a@example.com')", { constraint: 'customers_pkey', table: 'customers' }],
    ['23503', 'ForeignKeyViolationError', ForeignKeyViolationError, "INSERT INTO orders VALUES (2, 'b@example.com', 1)", { constraint: 'orders_email_fkey', table: 'orders' }],
    ['23502', 'NotNullViolationError', NotNullViolationError, 'INSERT INTO orders VALUES (3, NULL, 1)', { column: 'email', table: 'orders' }],
    ['23514', 'CheckViolationError', CheckViolationError, "INSERT INTO orders VALUES (4, 'a@example.com', -1)", { constraint: 'orders_total_check', table: 'orders' }],
  ])('%s is thrown as %s by query(), not retried, and the connection is kept', async (sqlState, name, type, sql, fields) => {
    const db = open();
    const before = (await db.query(PID_SQL)).rows[0].pid;

    const error = await rejectionOf(db.query(sql));
    const after = (await db.query(PID_SQL)).rows[0].pid;

    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ name, sqlState, retryable: false, ambiguous: false, attempts: 1, ...fields });
    expect(retries).toEqual([]);
    expect(after).toBe(before);
  });

  it('rolls back withTransaction() and is not retried: the callback ran once', async () => {
    const db = open();
    const attempts: number[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query("INSERT INTO customers VALUES ('c@example.com')");
      await client.query("INSERT INTO customers VALUES ('a@example.com')");
    }));

    expect(error).toBeInstanceOf(UniqueViolationError);
    expect(attempts).toEqual([1]);
    expect((await fault.admin("SELECT 1 FROM customers WHERE email = 'c@example.com'")).rowCount).toBe(0);
  });
});

describe('25P02 in_failed_sql_transaction', () => {
  it('is thrown as TransactionAbortedError to a callback that carried on after an error, and not retried', async () => {
    const db = open();
    const attempts: number[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('SELECT 1 / 0').catch(() => undefined);
      await client.query('SELECT 1');
    }));

    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect(error).toMatchObject({ sqlState: '25P02', retryable: false });
    expect(attempts).toEqual([1]);
  });
});

describe('any other server ERROR', () => {
  it('is a QueryError with its SQLSTATE and position, not retried', async () => {
    const db = open();

    const error = await rejectionOf(db.query('SELEKT 1'));

    expect(error).toBeInstanceOf(QueryError);
    expect(error).toMatchObject({ name: 'QueryError', sqlState: '42601', position: '1', retryable: false, attempts: 1 });
    expect(retries).toEqual([]);
  });
});

describe("pg's refusal of a statement before it sends any of it", () => {
  it('is a QueryError that query() does not retry, even for an idempotent statement, and the connection is kept', async () => {
    const db = open();
    const before = (await db.query(PID_SQL)).rows[0].pid;

    // As from plain JavaScript: values that are not an array.
    const error = await rejectionOf(db.query('SELECT $1::int AS n', 5 as unknown as unknown[], { idempotent: true }));
    const after = (await db.query(PID_SQL)).rows[0].pid;

    expect(error).toBeInstanceOf(QueryError);
    expect(error).toMatchObject({ retryable: false, ambiguous: false, attempts: 1 });
    expect((error as Error).message).toBe('pg refused the statement before sending it: Query values must be an array');
    expect(retries).toEqual([]);
    expect(after).toBe(before);
  });

  it('is rethrown by withTransaction() without a rerun: a prepared-statement name used for other text', async () => {
    const db = open();
    const attempts: number[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query({ name: 'reused_tx', text: 'SELECT 1 AS n' });
      await client.query({ name: 'reused_tx', text: 'SELECT 2 AS n' });
    }));

    expect(error).toBeInstanceOf(QueryError);
    expect(attempts).toEqual([1]);
  });
});

describe('25006 read_only_sql_transaction on a read-write operation', () => {
  /** Opens a pooled session that is read-only, as one left on a writer that failover demoted would be. */
  async function openOnDemotedWriter(applicationName: string) {
    const db = open(applicationName);
    await fault.admin(`ALTER ROLE ${fault.role} SET default_transaction_read_only = on`);
    const pid = (await db.query(PID_SQL)).rows[0].pid;
    await fault.admin(`ALTER ROLE ${fault.role} RESET default_transaction_read_only`); // new sessions can write
    return { db, pid };
  }

  it('is retried by query() on a new connection', async () => {
    const { db, pid } = await openOnDemotedWriter('demoted-query');

    const { rows } = await db.query("INSERT INTO customers VALUES ('d@example.com') RETURNING pg_backend_pid() AS pid");

    expect(rows[0].pid).not.toBe(pid);
    expect(retries.map((event) => event.sqlState)).toEqual(['25006']);
    expect((await fault.admin("SELECT 1 FROM customers WHERE email = 'd@example.com'")).rowCount).toBe(1);
  });

  it('reruns withTransaction() on a new connection', async () => {
    const { db, pid } = await openOnDemotedWriter('demoted-transaction');

    const pids = [] as number[];
    await db.withTransaction(async (client) => {
      pids.push((await client.query(PID_SQL)).rows[0].pid);
      await client.query("INSERT INTO customers VALUES ('e@example.com')");
    });

    expect(pids).toEqual([pid, expect.any(Number)]);
    expect(pids[1]).not.toBe(pid);
    expect(retries.map((event) => event.sqlState)).toEqual(['25006']);
  });

  it('is not retried when the caller declared the statement read-only', async () => {
    const { db } = await openOnDemotedWriter('demoted-read-only');

    const error = await rejectionOf(db.query("INSERT INTO customers VALUES ('f@example.com')", [], { readOnly: true }));

    expect(error).toBeInstanceOf(ReadOnlyConnectionError);
    expect(error).toMatchObject({ sqlState: '25006', attempts: 1 });
  });
});

describe('55P03 lock_not_available', () => {
  let locker: Client;

  beforeAll(async () => {
    await fault.admin(`ALTER ROLE ${fault.role} SET lock_timeout = '1s'`);
  });

  beforeEach(async () => {
    locker = await fault.connectAsRole();
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM orders WHERE id = 1 FOR UPDATE');
  });

  afterEach(async () => {
    await locker.end();
  });

  afterAll(async () => {
    await fault.admin(`ALTER ROLE ${fault.role} RESET lock_timeout`);
  });

  it('is not retried by default', async () => {
    const db = open();

    const error = await rejectionOf(db.query('UPDATE orders SET total = total + 1 WHERE id = 1'));

    expect(error).toBeInstanceOf(LockNotAvailableError);
    expect(error).toMatchObject({ sqlState: '55P03', attempts: 1 });
  });

  it('is retried when the caller opts in, and the retry gets the lock once it is free', async () => {
    const released: Array<Promise<unknown>> = [];
    const db = databases.open(fault.options({ poolMax: 1, hooks: { ...hooks, onRetry: (event) => {
      hooks.onRetry(event);
      released.push(locker.query('COMMIT')); // well inside the retry's own 1 s lock_timeout
    } } }));

    const result = await db.query('UPDATE orders SET total = total + 1 WHERE id = 1', [], { retryOnLockNotAvailable: true });
    await Promise.all(released);

    expect(result.rowCount).toBe(1);
    expect(retries.map((event) => event.sqlState)).toEqual(['55P03']);
    expect(queries).toEqual([expect.objectContaining({ ok: true, attempts: 2 })]);
  });

  it('reruns withTransaction() when the caller opts in', async () => {
    const db = databases.open(fault.options({ poolMax: 1, hooks: { ...hooks, onRetry: (event) => {
      hooks.onRetry(event);
      void locker.query('COMMIT');
    } } }));
    const attempts: number[] = [];

    await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('UPDATE orders SET total = total + 1 WHERE id = 1');
    }, { retryOnLockNotAvailable: true });

    expect(attempts).toEqual([1, 2]);
    expect(retries.map((event) => event.sqlState)).toEqual(['55P03']);
  });
});
