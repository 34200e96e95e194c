// A black-holed network (a dead NAT, a partition) answers nothing, so only the client's own timers end a call.
// Every attempt's timeout is clamped to the operation's deadline (explicit, or the Lambda context's remaining time
// less a reserve), so a call fails in bounded time with a typed error. And the per-container retry budget stops
// retries from multiplying the load on a network that is down: once it is spent, each call makes one attempt.
import net, { type AddressInfo } from 'node:net';
import { createLambdaContext } from '../../../../scripts/lib/lambda-context';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import { ConnectionError, DeadlineExceededError, PoolExhaustedError, QueryTimeoutError } from '../../../src/shared/db';
import { testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, type FaultDatabase } from './support';

// Real waits (TTLs, deadlines, timeouts) on a busy machine: allow more than Jest's default 5 s a test.
jest.setTimeout(20_000);

/** Slack for timers and the event loop on a busy two-core machine. */
const MARGIN_MILLIS = 1000;

let fault: FaultDatabase;
let proxy: TcpProxy;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('blackhole');
  await fault.asOwner('CREATE TABLE notes (body text NOT NULL)');
});

beforeEach(async () => {
  proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
});

afterEach(async () => {
  proxy.blackhole(false);
  await databases.closeAll();
  await proxy.close();
});

afterAll(() => fault?.drop());

/** Runs `call` and returns what it rejected with and after how long. */
async function failureOf(call: () => Promise<unknown>): Promise<{ error: unknown; millis: number }> {
  const startedAt = Date.now();
  const error = await rejectionOf(call());
  return { error, millis: Date.now() - startedAt };
}

/** A plain TCP forwarder to `port` that counts the connections it accepts. */
async function startConnectionCounter(port: number): Promise<{ readonly port: number; readonly accepted: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    const upstream = net.connect(port, '127.0.0.1');
    for (const [from, to] of [[socket, upstream], [upstream, socket]]) {
      sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
      from.pipe(to);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('a call over a black-holed network', () => {
  it('fails by its explicit deadline with a typed error', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1 }));
    await db.query('SELECT 1');
    proxy.blackhole(true);

    const { error, millis } = await failureOf(() => db.query('SELECT 1', [], { deadline: Date.now() + 1500 }));

    expect(error).toBeInstanceOf(QueryTimeoutError);
    expect(error).toMatchObject({ ambiguous: true, attempts: 1 });
    expect(millis).toBeGreaterThanOrEqual(1400);
    expect(millis).toBeLessThan(1500 + MARGIN_MILLIS);
  });

  it("fails an idempotent query by the Lambda context's deadline, before the function's own time runs out", async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1 }));
    await db.query('SELECT 1');
    proxy.blackhole(true);
    const context = createLambdaContext({ timeoutMillis: 2500 }); // deadline: 2500 - max(500 ms, 10 %) = 2000 ms from now

    const { error, millis } = await failureOf(() => db.query('SELECT 1', [], { context, idempotent: true }));

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).cause).toBeInstanceOf(QueryTimeoutError);
    expect(millis).toBeGreaterThanOrEqual(1900);
    expect(millis).toBeLessThan(2000 + MARGIN_MILLIS);
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
  });

  it('fails a transaction by its deadline, although nothing answers its BEGIN', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1 }));
    await db.query('SELECT 1');
    proxy.blackhole(true);
    const attempts: number[] = [];

    const { error, millis } = await failureOf(() => db.withTransaction(async (client, tx) => {
      attempts.push(tx.attempt);
      await client.query("INSERT INTO notes (body) VALUES ('never')");
    }, { deadline: Date.now() + 1500 }));

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).cause).toBeInstanceOf(QueryTimeoutError);
    expect(error).toMatchObject({ ambiguous: false }); // nothing can have committed: COMMIT was never sent
    expect(attempts).toEqual([]);
    expect(millis).toBeGreaterThanOrEqual(1400);
    expect(millis).toBeLessThan(1500 + MARGIN_MILLIS);
  });
});

describe('callers queued behind connections that are still connecting', () => {
  it('get a connect timeout that is retried, not PoolExhaustedError, and all succeed once the network is back', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 2, connectTimeoutMillis: 800 }));
    proxy.blackhole(true);
    setTimeout(() => proxy.blackhole(false), 1200);

    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => db.query('SELECT $1::int AS i', [i])));

    expect(results.map((result) => (result.status === 'fulfilled' ? result.value.rows[0].i : result.reason))).toEqual([1, 2, 3, 4]);
  });

  it('get DeadlineExceededError, not PoolExhaustedError, when the deadline comes before the connect timeout', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1, connectTimeoutMillis: 5000 }));
    proxy.blackhole(true);
    const deadline = Date.now() + 1000;

    const results = await Promise.allSettled([1, 2, 3].map((i) => db.query('SELECT $1::int AS i', [i], { deadline })));

    expect(results.map((result) => (result.status === 'rejected' ? (result.reason as Error).name : 'ok'))).toEqual(['DeadlineExceededError', 'DeadlineExceededError', 'DeadlineExceededError']);
  });

  it('still get PoolExhaustedError when the pool is full of connected clients in use', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1, connectTimeoutMillis: 300 }));
    const held = await db.getClient();

    const error = await rejectionOf(db.query('SELECT 1'));
    held.release();

    expect(error).toBeInstanceOf(PoolExhaustedError);
  });
});

describe('the retry budget', () => {
  it('stops retries from multiplying connection attempts once it is spent; later calls fail fast with the original error', async () => {
    const counter = await startConnectionCounter(proxy.port);
    const db = databases.open(fault.proxiedOptions(proxy, {
      port: counter.port, poolMax: 1, connectTimeoutMillis: 200, maxAttempts: 5, retryBudget: 2, operationTimeoutMillis: 5000,
    }));
    proxy.blackhole(true);

    const first = await rejectionOf(db.query('SELECT 1'));
    const afterFirst = counter.accepted;
    const later = [];
    for (let call = 0; call < 4; call++) later.push(await failureOf(() => db.query('SELECT 1')));
    await counter.close();

    // A connect timeout costs 2 tokens: the budget of 2 pays for one retry of the first call, then nothing.
    expect(first).toBeInstanceOf(ConnectionError);
    expect(first).toMatchObject({ attempts: 2 });
    expect(afterFirst).toBe(2);
    expect(counter.accepted).toBe(afterFirst + 4); // without the budget: 5 attempts a call, 25 in all
    for (const { error, millis } of later) {
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).not.toBeInstanceOf(DeadlineExceededError);
      expect(error).toMatchObject({ attempts: 1 });
      expect(millis).toBeLessThan(200 + MARGIN_MILLIS);
    }
  });
});
