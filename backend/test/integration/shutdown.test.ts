// Graceful shutdown: closePool() is idempotent and safe while queries run, and inside Lambda a SIGTERM closes the
// default pool and exits 0, its drain capped at 250 ms (Lambda allows 300 ms).
import { closePool, ConfigurationError, ConnectionError, createDatabase, initializePool, query } from '../../src/shared/db';
import { adminClient, createRole, createTestDatabase, testServer } from './support/postgres';
import { scriptEnv, spawnScript } from './support/run-script';

const server = testServer();
let url: string;
let dropDatabase: () => Promise<void>;
const saved = { ...process.env };

async function sessionsOf(applicationName: string): Promise<number> {
  const admin = await adminClient();
  const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
  await admin.end();
  return rows[0].n;
}

beforeAll(async () => {
  const created = await createTestDatabase('shutdown');
  dropDatabase = created.drop;
  await createRole('shutdown_user', 'shutdown-pass');
  url = `postgres://shutdown_user:shutdown-pass@${server.host}:${server.port}/${created.name}`;
});

afterEach(async () => {
  await closePool();
  process.env = { ...saved };
});

afterAll(async () => {
  await dropDatabase?.();
});

describe('closePool', () => {
  it('lets running queries finish, can be called twice, and the next query opens a new pool', async () => {
    Object.assign(process.env, { DATABASE_URL: url, DB_SSL_CA_FILE: server.caFile, DB_LOG_LEVEL: 'silent' });
    const running = query('SELECT pg_sleep(0.2), 1 AS finished');
    await new Promise((resolve) => setTimeout(resolve, 50));

    await Promise.all([closePool(), closePool()]);
    const finished = await running;
    const after = await query('SELECT 2 AS n');

    expect(finished.rows[0].finished).toBe(1);
    expect(after.rows[0].n).toBe(2);
  });
});

describe('closePool called twice', () => {
  it('resolves the second call only once the pool the first one is closing has ended', async () => {
    Object.assign(process.env, { DATABASE_URL: url, DB_SSL_CA_FILE: server.caFile, DB_LOG_LEVEL: 'silent' });
    const pool = await initializePool();
    const running = query('SELECT pg_sleep(0.3), 6 AS n');
    await new Promise((resolve) => setTimeout(resolve, 50));

    const first = closePool();
    await closePool();
    const totalAfterSecond = pool.totalCount;

    expect(totalAfterSecond).toBe(0);
    expect((await running).rows[0].n).toBe(6);
    await first;
  });
});

describe('a closed instance', () => {
  const options = () => ({ databaseUrl: url, sslCaFile: server.caFile, logLevel: 'silent' as const, poolMax: 1 });

  it('serves the calls already queued on its pool, then refuses new ones without opening a connection', async () => {
    const db = createDatabase({ ...options(), applicationName: 'closed-queued' });
    const held = await db.getClient();
    const queued = db.query('SELECT 3 AS n');
    await new Promise((resolve) => setTimeout(resolve, 20));

    const closing = db.close();
    held.release();
    await closing;
    const after = await db.query('SELECT 4 AS n').catch((e: unknown) => e);

    expect((await queued).rows[0].n).toBe(3);
    expect(after).toBeInstanceOf(ConnectionError);
    expect((after as Error).message).toMatch(/instance was closed/);
    expect(await sessionsOf('closed-queued')).toBe(0);
  });

  it('resolves a second close() only once the connections the first is closing are closed', async () => {
    const db = createDatabase({ ...options(), applicationName: 'closed-twice' });
    const pool = await db.getPool();
    const running = db.query('SELECT pg_sleep(0.3), 5 AS n');
    await new Promise((resolve) => setTimeout(resolve, 50));

    const first = db.close();
    await db.close();
    const totalAfterSecond = pool.totalCount;

    expect(totalAfterSecond).toBe(0);
    expect((await running).rows[0].n).toBe(5);
    await first;
  });

  it('lets a call that was waiting for its credentials when it closed finish, then closes the pool it opened', async () => {
    // An IAM signer that answers only when told to stands in for a slow credentials source.
    let answer: () => void = () => undefined;
    const slow = createDatabase({
      ...options(), applicationName: 'closed-waiting', auth: 'iam', host: server.host, user: 'shutdown_user',
      iamTokenSigner: () => new Promise<string>((resolve) => (answer = () => resolve('shutdown-pass'))),
    });

    const waiting = slow.query('SELECT 1 AS n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = slow.close();
    const refused = await slow.query('SELECT 2').catch((e: unknown) => e);
    answer();
    await closing;

    expect((await waiting).rows[0].n).toBe(1);
    expect(refused).toBeInstanceOf(ConnectionError);
    expect((refused as Error).message).toMatch(/instance was closed/);
    expect(await sessionsOf('closed-waiting')).toBe(0);
  });

  it('lets a call that is between two attempts when it closes retry and finish', async () => {
    let closing: Promise<void> | undefined;
    const db = createDatabase({
      ...options(), applicationName: 'closed-retrying', retryBaseDelayMillis: 50,
      hooks: { onRetry: () => void (closing ??= db.close()) },
    });

    // A serialization failure on the first run only: the transaction is rerun after the close began.
    const result = await db.withTransaction(async (client, tx) => {
      if (tx.attempt === 1) await client.query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$");
      return (await client.query('SELECT $1::int AS attempt', [tx.attempt])).rows[0].attempt;
    });
    await closing;

    expect(result).toBe(2);
    expect(await sessionsOf('closed-retrying')).toBe(0);
  });
});

describe('the db.ts functions', () => {
  it('report a configuration error as a rejected promise, not a throw', async () => {
    Object.assign(process.env, { DATABASE_URL: url, DB_POOL_MAX: 'abc' });

    const outcome = (() => {
      try {
        return query('SELECT 1').then(() => 'resolved', (e: unknown) => e);
      } catch {
        return Promise.resolve('threw');
      }
    })();

    expect(await outcome).toBeInstanceOf(ConfigurationError);
  });

  it('hand initializePool() racing closePool() no pool that nothing will close', async () => {
    Object.assign(process.env, { DB_LOG_LEVEL: 'silent' });
    const initializing = initializePool(undefined, { databaseUrl: url, sslCaFile: server.caFile, applicationName: 'init-race' }).catch((e: unknown) => e);
    await closePool();

    expect(await initializing).toBeInstanceOf(ConnectionError);
    expect(await sessionsOf('init-race')).toBe(0);
  });
});

describe('SIGTERM inside Lambda', () => {
  it('closes the pool and exits 0 instead of dying by the signal', async () => {
    const run = spawnScript('../backend/test/integration/support/sigterm-child.ts', [], scriptEnv({
      DATABASE_URL: url, DB_SSL_CA_FILE: server.caFile, AWS_LAMBDA_FUNCTION_NAME: 'sigterm-test', DB_LOG_LEVEL: 'silent',
    }));
    await run.waitForOutput(/ready/, 20_000);
    const before = await sessionsOf('sigterm-test');

    const signalledAt = Date.now();
    process.kill(run.child.pid as number, 'SIGTERM');
    const exit = await run.exited;
    const exitMillis = Date.now() - signalledAt;
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(before).toBe(1);
    expect(exit.code).toBe(0);
    // The drain is capped at 250 ms by a timer; this generous bound only proves the process does not hang.
    expect(exitMillis).toBeLessThan(2000);
    expect(run.output()).toContain('pool ended: true, connections left: 0');
    expect(await sessionsOf('sigterm-test')).toBe(0);
  });

  it("leaves the exit to the application's own once-listener, closing the pool all the same", async () => {
    const run = spawnScript('../backend/test/integration/support/sigterm-child.ts', [], scriptEnv({
      DATABASE_URL: url, DB_SSL_CA_FILE: server.caFile, AWS_LAMBDA_FUNCTION_NAME: 'sigterm-app', DB_LOG_LEVEL: 'silent', SIGTERM_APP_LISTENER: 'once',
    }));
    await run.waitForOutput(/ready/, 20_000);

    process.kill(run.child.pid as number, 'SIGTERM');
    const exit = await run.exited;

    expect(exit.code).toBe(3);
    expect(run.output()).toContain('app listener done');
    expect(run.output()).toContain('pool ended: true, connections left: 0');
  });
});
