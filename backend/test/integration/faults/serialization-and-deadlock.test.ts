// 40001 serialization_failure and 40P01 deadlock_detected are definitive ERRORs: the transaction rolled back, so
// rerunning it is safe. withTransaction reruns the whole callback (never a savepoint) and both contenders finish with
// the invariant intact; query() reruns an autocommit statement chosen as a deadlock victim. Barriers make the two
// transactions interleave the same way on every run.
import type { Client } from 'pg';
import type { Database, QueryEvent, RetryEvent } from '../../../src/shared/db';
import { adminClient } from '../support/postgres';
import { createBarrier, createFaultDatabase, databaseTracker, waitUntil, type FaultDatabase } from './support';

const LIMIT = 100;
const SHARE = 60;

let fault: FaultDatabase;
const databases = databaseTracker();
let retries: RetryEvent[];
let queries: QueryEvent[];

beforeAll(async () => {
  fault = await createFaultDatabase('serialization');
  await fault.asOwner(`
    CREATE TABLE allocations (who text NOT NULL, amount int NOT NULL);
    CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`);
  // Deadlocks are detected after deadlock_timeout (1 s by default); a superuser setting, so set it for the database.
  await fault.admin(`ALTER DATABASE ${fault.name} SET deadlock_timeout = '100ms'`);
});

beforeEach(async () => {
  retries = [];
  queries = [];
  await fault.admin('TRUNCATE allocations, counters');
  await fault.admin('INSERT INTO counters (id, n) VALUES (1, 0), (2, 0)');
});

afterEach(() => databases.closeAll());

afterAll(() => fault?.drop());

function open(): Database {
  return databases.open(fault.options({ poolMax: 2, hooks: { onRetry: (event) => retries.push(event), onQuery: (event) => queries.push(event) } }));
}

/** Both callers read the total, meet at the barrier (first attempt only), then allocate SHARE if it still fits. */
function allocateConcurrently(db: Database, isolationLevel: 'serializable' | 'read committed'): Promise<string[]> {
  const barrier = createBarrier(2);
  const allocate = (who: string) => db.withTransaction(async (client, tx) => {
    const { total } = (await client.query('SELECT coalesce(sum(amount), 0)::int AS total FROM allocations')).rows[0];
    if (tx.attempt === 1) await barrier.arrive();
    if (total + SHARE > LIMIT) return `${who} refused`;
    await client.query('INSERT INTO allocations (who, amount) VALUES ($1, $2)', [who, SHARE]);
    return `${who} allocated`;
  }, { isolationLevel });
  return Promise.all([allocate('a'), allocate('b')]);
}

async function allocated(): Promise<number> {
  return (await fault.admin('SELECT coalesce(sum(amount), 0)::int AS total FROM allocations')).rows[0].total;
}

describe('write skew', () => {
  it('happens at read committed, where both read the same total and both allocate', async () => {
    const db = open();

    const outcomes = await allocateConcurrently(db, 'read committed');

    expect(outcomes).toEqual(['a allocated', 'b allocated']);
    expect(await allocated()).toBe(2 * SHARE); // over the limit: the anomaly the next test prevents
  });

  it('is prevented at serializable: the loser reruns its whole callback and both calls finish within the limit', async () => {
    const db = open();

    const outcomes = await allocateConcurrently(db, 'serializable');

    expect(outcomes.map((outcome) => outcome.split(' ')[1]).sort()).toEqual(['allocated', 'refused']);
    expect(await allocated()).toBe(SHARE);
    expect(retries.map((event) => event.sqlState)).toEqual(['40001']);
    expect(queries.map((event) => [event.ok, event.attempts]).sort()).toEqual([[true, 1], [true, 2]]);
  });
});

describe('a deadlock', () => {
  it('between two transactions is broken by rerunning the victim, and both updates apply once', async () => {
    const db = open();
    const barrier = createBarrier(2);
    const bump = (first: number, second: number) => db.withTransaction(async (client, tx) => {
      await client.query('UPDATE counters SET n = n + 1 WHERE id = $1', [first]);
      if (tx.attempt === 1) await barrier.arrive();
      await client.query('UPDATE counters SET n = n + 1 WHERE id = $1', [second]);
    });

    await Promise.all([bump(1, 2), bump(2, 1)]);

    const { rows } = await fault.admin('SELECT id, n FROM counters ORDER BY id');
    expect(rows).toEqual([{ id: 1, n: 2 }, { id: 2, n: 2 }]);
    expect(retries.map((event) => event.sqlState)).toEqual(['40P01']);
  });

  it('that picks an autocommit statement as its victim is retried by query()', async () => {
    const db = databases.open(fault.options({ applicationName: 'deadlock-victim', poolMax: 1, hooks: { onRetry: (event) => retries.push(event), onQuery: (event) => queries.push(event) } }));
    const locker: Client = await adminClient(fault.name);
    await locker.query("SET deadlock_timeout = '10s'"); // so that the statement, not the locker, detects the deadlock
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM counters WHERE id = 2 FOR UPDATE');

    const statement = db.query('SELECT id FROM counters ORDER BY id FOR UPDATE'); // locks 1, then waits for 2
    await waitUntil(async () => (await fault.admin("SELECT 1 FROM pg_stat_activity WHERE application_name = 'deadlock-victim' AND wait_event_type = 'Lock'")).rowCount === 1, 'the statement waits for row 2');
    await locker.query('SELECT id FROM counters WHERE id = 1 FOR UPDATE'); // granted once the statement is aborted
    await locker.query('COMMIT');
    const { rows } = await statement;
    await locker.end();

    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
    expect(retries.map((event) => event.sqlState)).toEqual(['40P01']);
    expect(queries).toEqual([expect.objectContaining({ kind: 'query', ok: true, attempts: 2 })]);
  });
});
