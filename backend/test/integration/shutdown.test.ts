// Graceful shutdown: closePool() is idempotent and safe while queries run, and inside Lambda a SIGTERM closes the
// default pool and exits 0, its drain capped at 250 ms (Lambda allows 300 ms).
import { closePool, query } from '../../src/shared/db';
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
    expect(await sessionsOf('sigterm-test')).toBe(0);
  });
});
