// A connection lost after a statement was sent leaves its outcome unknown: the server may have run it. query()
// re-sends it only when the caller declared it idempotent, and otherwise says so with ConnectionLostError
// (`ambiguous: true`). Inside a transaction the same loss is not ambiguous: nothing commits without COMMIT.
// The TCP proxy (TLS off, so its hooks read the protocol) cuts the connection right after forwarding the statement.
import crypto from 'node:crypto';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import { ConnectionLostError } from '../../../src/shared/db';
import { terminateBackends, testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, waitUntil, type FaultDatabase } from './support';

let fault: FaultDatabase;
let proxy: TcpProxy;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('lost_after_send');
  await fault.asOwner('CREATE TABLE payments (id uuid PRIMARY KEY)');
});

beforeEach(async () => {
  proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
});

afterEach(async () => {
  await databases.closeAll();
  await proxy.close();
});

afterAll(() => fault?.drop());

/** Cuts the connection after forwarding the first chunk that contains `text`; counts every chunk that does. */
function cutAfterFirst(text: string): { readonly sent: number } {
  const counter = { sent: 0 };
  proxy.onClientData((chunk) => {
    if (!chunk.includes(text)) return 'forward';
    counter.sent += 1;
    return counter.sent === 1 ? 'forward-then-drop' : 'forward';
  });
  return counter;
}

async function paymentRows(id: string): Promise<number> {
  return (await fault.admin('SELECT count(*)::int AS n FROM payments WHERE id = $1', [id])).rows[0].n;
}

async function untilSessionsEnd(applicationName: string): Promise<void> {
  await waitUntil(async () => (await fault.admin('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [applicationName])).rowCount === 0, `${applicationName} has no session`);
}

describe('query() when the connection is lost after the statement was sent', () => {
  it('does not re-send a plain INSERT and reports that its outcome is unknown', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { applicationName: 'lost-insert', poolMax: 1 }));
    const id = crypto.randomUUID();
    const insert = cutAfterFirst('INSERT INTO payments');

    // No parameters: the simple protocol sends the statement in one message, so the server receives all of it.
    const error = await rejectionOf(db.query(`INSERT INTO payments (id) VALUES ('${id}')`));
    await untilSessionsEnd('lost-insert'); // the backend exits once it has run what it received

    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error).toMatchObject({ ambiguous: true, retryable: false, attempts: 1, phase: 'statement' });
    expect(insert.sent).toBe(1);
    expect(await paymentRows(id)).toBe(1); // it did run: retrying blindly would have paid twice
  });

  it('re-sends it when the caller declares it idempotent, and its own guard keeps one row', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { applicationName: 'lost-idempotent', poolMax: 1 }));
    const id = crypto.randomUUID();
    const insert = cutAfterFirst('INSERT INTO payments');

    await db.query(`INSERT INTO payments (id) VALUES ('${id}') ON CONFLICT (id) DO NOTHING`, undefined, { idempotent: true });

    expect(insert.sent).toBe(2);
    expect(await paymentRows(id)).toBe(1);
  });

  it('reports a statement whose backend was killed while it ran as ambiguous, naming the SQLSTATE', async () => {
    const db = databases.open(fault.options({ applicationName: 'killed-statement', poolMax: 1 }));
    const id = crypto.randomUUID();
    const running = rejectionOf(db.query('INSERT INTO payments (id) SELECT $1 FROM pg_sleep(30)', [id]));
    await waitUntil(async () => (await fault.admin("SELECT 1 FROM pg_stat_activity WHERE application_name = 'killed-statement' AND state = 'active'")).rowCount === 1, 'the INSERT runs');

    await terminateBackends({ applicationName: 'killed-statement' });
    const error = await running;

    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error).toMatchObject({ ambiguous: true, retryable: false, attempts: 1, sqlState: '57P01' });
    expect((error as Error).message).toMatch(/outcome is unknown/);
  });
});

describe('withTransaction() when the connection is lost after a statement was sent', () => {
  it('reruns the callback, since a transaction without COMMIT never commits, and commits once', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { applicationName: 'lost-in-tx', poolMax: 1 }));
    const id = crypto.randomUUID();
    const insert = cutAfterFirst('INSERT INTO payments');
    const attempts: number[] = [];

    await db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query(`INSERT INTO payments (id) VALUES ('${id}')`);
    });

    expect(insert.sent).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(await paymentRows(id)).toBe(1);
  });
});
