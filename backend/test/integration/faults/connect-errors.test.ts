// The connect phase sends nothing of the caller's, so a transient failure there is always safe to retry: a refused
// or reset connection, 53300 too_many_connections (at most twice, slowly, at double cost). What cannot heal by
// waiting is not retried: a missing database, a server without TLS, and a pool whose clients are all checked out
// (local saturation or a leak, which a retry would only make worse).
import net, { type AddressInfo } from 'node:net';
import type { Client } from 'pg';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import {
  ConfigurationError, ConnectionError, PoolExhaustedError, TlsError, TooManyConnectionsError, type RetryEvent,
} from '../../../src/shared/db';
import { testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, type FaultDatabase } from './support';

let fault: FaultDatabase;
let proxy: TcpProxy;
let retries: RetryEvent[];
const databases = databaseTracker();
const onRetry = (event: RetryEvent) => retries.push(event);

beforeAll(async () => {
  fault = await createFaultDatabase('connect_errors');
});

beforeEach(async () => {
  retries = [];
  proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
});

afterEach(async () => {
  await databases.closeAll();
  await proxy.close();
});

afterAll(() => fault?.drop());

describe('a connection refused or reset while connecting', () => {
  it('is retried, and the call succeeds once the server listens again', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { hooks: { onRetry: (event) => {
      onRetry(event);
      void proxy.refuse(false); // listens again synchronously, before the retry's delay starts
    } } }));
    await proxy.refuse(true);

    const { rows } = await db.query('SELECT 1 AS ok');

    expect(rows).toEqual([{ ok: 1 }]);
    expect(retries).toEqual([expect.objectContaining({ kind: 'query', attempt: 1, errorCode: 'DB_CONNECTION' })]);
  });

  it('is retried up to maxAttempts, then fails with ConnectionError saying nothing was sent', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { maxAttempts: 3, hooks: { onRetry } }));
    await proxy.refuse(true);

    const error = await rejectionOf(db.query('INSERT INTO nowhere VALUES (1)'));

    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ phase: 'connect', ambiguous: false, attempts: 3 });
    expect(retries).toHaveLength(2);
  });

  it('retries a connection reset during the startup exchange', async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { hooks: { onRetry } }));
    let startups = 0;
    proxy.onClientData((chunk) => {
      if (!chunk.includes(fault.role)) return 'forward'; // the startup message names the user
      startups += 1;
      return startups === 1 ? 'drop-connection' : 'forward';
    });

    const { rows } = await db.query('SELECT 1 AS ok');

    expect(rows).toEqual([{ ok: 1 }]);
    expect(startups).toBe(2);
    expect(retries).toEqual([expect.objectContaining({ errorCode: 'DB_CONNECTION' })]);
  });
});

describe('53300 too_many_connections', () => {
  let holder: Client;

  beforeEach(async () => {
    await fault.admin(`ALTER ROLE ${fault.role} CONNECTION LIMIT 1`);
    holder = await fault.connectAsRole(); // the role's only slot
  });

  afterEach(async () => {
    await holder.end();
    await fault.admin(`ALTER ROLE ${fault.role} CONNECTION LIMIT -1`);
  });

  it('is retried at most twice, with a base delay of at least 250 ms, then fails with TooManyConnectionsError', async () => {
    const db = databases.open(fault.options({ hooks: { onRetry } }));

    const error = await rejectionOf(db.query('SELECT 1'));

    expect(error).toBeInstanceOf(TooManyConnectionsError);
    expect(error).toMatchObject({ sqlState: '53300', phase: 'connect', attempts: 3 });
    expect(retries.map((event) => event.sqlState)).toEqual(['53300', '53300']);
    // Full jitter over [half the ceiling, the ceiling], the ceiling starting at 250 ms and doubling.
    expect(retries[0].delayMillis).toBeGreaterThanOrEqual(125);
    expect(retries[1].delayMillis).toBeGreaterThanOrEqual(250);
  });

  it('costs two budget tokens a retry, so a budget of 3 pays for only one', async () => {
    const db = databases.open(fault.options({ retryBudget: 3, hooks: { onRetry } }));

    const error = await rejectionOf(db.query('SELECT 1'));

    expect(error).toBeInstanceOf(TooManyConnectionsError);
    expect(error).toMatchObject({ attempts: 2 });
    expect(retries).toHaveLength(1);
  });
});

describe('failures a retry cannot fix', () => {
  it('does not retry a pool checkout timeout: PoolExhaustedError, and the pool works once a client is released', async () => {
    const db = databases.open(fault.options({ poolMax: 1, connectTimeoutMillis: 300, hooks: { onRetry } }));
    const held = await db.getClient();

    const startedAt = Date.now();
    const error = await rejectionOf(db.query('SELECT 1'));
    const millis = Date.now() - startedAt;
    held.release();
    const { rows } = await db.query('SELECT 1 AS ok');

    expect(error).toBeInstanceOf(PoolExhaustedError);
    expect(error).toMatchObject({ attempts: 1, retryable: false });
    expect(millis).toBeLessThan(300 + 1000); // generous: timers run late on a busy machine
    expect(retries).toEqual([]);
    expect(rows).toEqual([{ ok: 1 }]);
  });

  it('does not retry 3D000: the database does not exist', async () => {
    const db = databases.open(fault.options({ database: 'no_such_database', hooks: { onRetry } }));

    const error = await rejectionOf(db.query('SELECT 1'));

    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ sqlState: '3D000', attempts: 1 });
    expect(retries).toEqual([]);
  });

  it('does not retry a server that answers the TLS request with "no"', async () => {
    const noTls = net.createServer((socket) => socket.once('data', () => socket.write('N')));
    await new Promise<void>((resolve) => noTls.listen(0, '127.0.0.1', resolve));
    const db = databases.open(fault.options({ host: '127.0.0.1', port: (noTls.address() as AddressInfo).port, hooks: { onRetry } }));

    const error = await rejectionOf(db.query('SELECT 1'));
    noTls.close();

    expect(error).toBeInstanceOf(TlsError);
    expect(error).toMatchObject({ attempts: 1 });
    expect(retries).toEqual([]);
  });
});
