// A COMMIT whose answer never arrives may or may not have committed. withTransaction does not guess: it reads the
// transaction id before COMMIT and, when COMMIT fails without a server ERROR, asks pg_xact_status() on a fresh
// connection. Committed: the result is returned once. Aborted: the callback reruns. Still in progress after a short
// poll: CommitOutcomeUnknownError, and nothing is rerun. The TCP proxy (TLS off) loses the COMMIT in either direction.
import crypto from 'node:crypto';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import { CommitOutcomeUnknownError, UniqueViolationError, type Database } from '../../../src/shared/db';
import { testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, waitUntil, type FaultDatabase } from './support';

// Real waits (TTLs, deadlines, timeouts) on a busy machine: allow more than Jest's default 5 s a test.
jest.setTimeout(20_000);

const GATE_LOCK = 42;

let fault: FaultDatabase;
let proxy: TcpProxy;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('commit_settle');
  await fault.asOwner(`
    CREATE TABLE receipts (id uuid PRIMARY KEY, attempt int NOT NULL);
    CREATE TABLE gated (id uuid PRIMARY KEY);
    -- Runs at COMMIT and waits for an advisory lock, so a test can hold a COMMIT in progress.
    CREATE FUNCTION wait_for_gate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(${GATE_LOCK}); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON gated DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_for_gate();
    CREATE TABLE seats (seat int, CONSTRAINT one_per_seat UNIQUE (seat) DEFERRABLE INITIALLY DEFERRED)`);
});

beforeEach(async () => {
  proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
});

afterEach(async () => {
  await databases.closeAll();
  await proxy.close();
});

afterAll(() => fault?.drop());

const open = (applicationName: string): Database => databases.open(fault.proxiedOptions(proxy, { applicationName, poolMax: 1 }));

/** Counts client messages that contain `text`. */
function countSent(text: string): { readonly count: number } {
  const counter = { count: 0 };
  proxy.onClientData((chunk) => {
    if (chunk.includes(text)) counter.count += 1;
    return 'forward';
  });
  return counter;
}

/** The CommandComplete tag PostgreSQL sends for a successful COMMIT. */
const COMMIT_TAG = Buffer.from('COMMIT\0');

/** Drops the first server reply that carries COMMIT's CommandComplete: the server committed, the client never hears. */
function loseFirstCommitReply(): void {
  let lost = false;
  proxy.onServerData((chunk) => {
    if (lost || !chunk.includes(COMMIT_TAG)) return 'forward';
    lost = true;
    return 'drop-connection';
  });
}

async function receipt(id: string): Promise<{ rows: number; attempt: number | null }> {
  const { rows } = await fault.admin<{ rows: number; attempt: number | null }>('SELECT count(*)::int AS rows, max(attempt) AS attempt FROM receipts WHERE id = $1', [id]);
  return rows[0];
}

describe('withTransaction when COMMIT gets no answer', () => {
  it('returns the result once when the lost COMMIT had committed', async () => {
    const db = open('commit-reply-lost');
    const id = crypto.randomUUID();
    const settled = countSent('pg_xact_status');
    loseFirstCommitReply();
    const attempts: number[] = [];
    const afterCommit: string[] = [];

    const result = await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      tx.afterCommit(() => afterCommit.push(id));
      await client.query('INSERT INTO receipts (id, attempt) VALUES ($1, $2)', [id, tx.attempt]);
      return 'receipt stored';
    });

    expect(result).toBe('receipt stored');
    expect(attempts).toEqual([1]);
    expect(afterCommit).toEqual([id]);
    expect(settled.count).toBeGreaterThanOrEqual(1);
    expect(await receipt(id)).toEqual({ rows: 1, attempt: 1 });
  });

  it('reruns the callback once when the lost COMMIT never reached the server', async () => {
    const db = open('commit-request-lost');
    const id = crypto.randomUUID();
    let commits = 0;
    let asked = 0;
    proxy.onClientData((chunk) => {
      if (chunk.includes('pg_xact_status')) asked += 1;
      if (!chunk.includes('COMMIT')) return 'forward';
      commits += 1;
      return commits === 1 ? 'drop-connection' : 'forward';
    });
    const attempts: number[] = [];
    const afterCommit: number[] = [];

    const result = await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      tx.afterCommit(() => afterCommit.push(tx.attempt));
      await client.query('INSERT INTO receipts (id, attempt) VALUES ($1, $2)', [id, tx.attempt]);
      return tx.attempt;
    });

    expect(result).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(afterCommit).toEqual([2]);
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(await receipt(id)).toEqual({ rows: 1, attempt: 2 });
  });

  it('throws CommitOutcomeUnknownError, rerunning nothing, while PostgreSQL itself cannot tell yet', async () => {
    const db = open('commit-in-progress');
    const id = crypto.randomUUID();
    await fault.admin('SELECT pg_advisory_lock($1)', [GATE_LOCK]);
    let cut = false;
    proxy.onClientData((chunk) => {
      if (cut || !chunk.includes('COMMIT')) return 'forward';
      cut = true;
      return 'forward-then-drop'; // the server runs the COMMIT, which waits at the gate
    });
    const attempts: number[] = [];
    const afterCommit: string[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      tx.afterCommit(() => afterCommit.push(id));
      await client.query('INSERT INTO gated (id) VALUES ($1)', [id]);
    }));
    await fault.admin('SELECT pg_advisory_unlock($1)', [GATE_LOCK]);
    await waitUntil(async () => (await fault.admin("SELECT 1 FROM pg_stat_activity WHERE application_name = 'commit-in-progress' AND state = 'active'")).rowCount === 0, 'the gated COMMIT has finished');

    expect(error).toBeInstanceOf(CommitOutcomeUnknownError);
    expect(error).toMatchObject({ ambiguous: true, retryable: false, phase: 'commit', attempts: 1 });
    expect(attempts).toEqual([1]);
    expect(afterCommit).toEqual([]);
    // It did commit in the end: a rerun of the callback would have written it twice.
    expect((await fault.admin('SELECT count(*)::int AS n FROM gated WHERE id = $1', [id])).rows[0].n).toBe(1);
  });

  it('returns the result of a transaction that wrote nothing without asking anyone', async () => {
    const db = open('read-only-commit-lost');
    const settled = countSent('pg_xact_status');
    loseFirstCommitReply();
    const attempts: number[] = [];

    const count = await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      return (await client.query('SELECT count(*)::int AS n FROM receipts')).rows[0].n as number;
    });

    expect(typeof count).toBe('number');
    expect(attempts).toEqual([1]);
    expect(settled.count).toBe(0);
  });
});

describe('withTransaction when COMMIT answers with an ERROR', () => {
  it('treats it as definitive: a deferred unique violation is thrown as such, not settled and not rerun', async () => {
    const db = open('commit-error');
    const settled = countSent('pg_xact_status');
    const attempts: number[] = [];

    const error = await rejectionOf(db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query('INSERT INTO seats (seat) VALUES (7), (7)');
    }));

    expect(error).toBeInstanceOf(UniqueViolationError);
    expect(error).toMatchObject({ phase: 'commit', sqlState: '23505', constraint: 'one_per_seat', ambiguous: false, attempts: 1 });
    expect(attempts).toEqual([1]);
    expect(settled.count).toBe(0);
    expect((await fault.admin('SELECT count(*)::int AS n FROM seats')).rows[0].n).toBe(0);
  });
});
