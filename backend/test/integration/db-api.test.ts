// The db module's public API against a real PostgreSQL over verified TLS: query, getClient, withTransaction,
// credentials from Secrets Manager (the real SDK against a local endpoint), rotation, and the facade's lifecycle.
import { inspect } from 'node:util';
import type { LocalSecretsManager } from '../../../scripts/lib/local-secrets-manager';
import { startSdkSecretsManager } from './support/sdk-secrets-manager';
import {
  AuthenticationError, createDatabase, Database, DeadlineExceededError, InvalidParameterError, QueryTimeoutError, ReadOnlyConnectionError, RetryEvent, TlsError,
  TransactionAbortedError, UniqueViolationError,
} from '../../src/shared/db';
import { adminClient, createRole, createTestDatabase, setRolePassword, terminateBackends, testServer } from './support/postgres';

const server = testServer();
const SPECIAL_PASSWORD = 'p@ss:w/o%rd?#&= with spaces';

let secrets: LocalSecretsManager;
let dbName: string;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];

function secretFor(password: string, user = 'api_user'): string {
  return JSON.stringify({ engine: 'postgres', host: server.host, port: server.port, username: user, password, dbname: dbName });
}

function database(options: Parameters<typeof createDatabase>[0] = {}): Database {
  const db = createDatabase({ secretId: 'api/db', sslCaFile: server.caFile, logLevel: 'silent', ...options });
  open.push(db);
  return db;
}

/** How long `work` took to settle, and its error if it failed. */
async function elapsedOf(work: Promise<unknown>): Promise<{ millis: number; error?: unknown }> {
  const startedAt = Date.now();
  try {
    await work;
    return { millis: Date.now() - startedAt };
  } catch (error) {
    return { millis: Date.now() - startedAt, error };
  }
}

beforeAll(async () => {
  ({ name: dbName, drop: dropDatabase } = await createTestDatabase('dbapi'));
  await createRole('api_user', SPECIAL_PASSWORD);
  const admin = await adminClient(dbName);
  await admin.query('GRANT ALL ON SCHEMA public TO api_user');
  await admin.end();
  secrets = await startSdkSecretsManager();
  secrets.putSecretValue('api/db', secretFor(SPECIAL_PASSWORD));
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await secrets?.close();
  await terminateBackends({ database: dbName });
  await dropDatabase?.();
});

describe('query', () => {
  it('reads a secret through the real SDK and queries over verified TLS', async () => {
    const db = database();

    const { rows } = await db.query<{ ssl: boolean; version: string; user: string }>(
      'SELECT s.ssl, s.version, current_user AS user FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()',
    );

    expect(rows[0]).toEqual({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/), user: 'api_user' });
    expect(secrets.calls.filter((c) => c.secretId === 'api/db').length).toBeGreaterThanOrEqual(1);
  });

  it("sets the configured session timeouts, and 0 turns off what the role would set", async () => {
    const admin = await adminClient();
    await admin.query("ALTER ROLE api_user SET statement_timeout = '1234ms'");
    await admin.query("ALTER ROLE api_user SET idle_in_transaction_session_timeout = '4321ms'");
    try {
      const show = async (db: Database) => (await db.query("SELECT current_setting('statement_timeout') AS st, current_setting('idle_in_transaction_session_timeout') AS it")).rows[0];

      const off = await show(database({ statementTimeoutMillis: 0, idleInTransactionTimeoutMillis: 0 }));
      const set = await show(database({ statementTimeoutMillis: 5000, idleInTransactionTimeoutMillis: 7000 }));

      expect(off).toEqual({ st: '0', it: '0' });
      expect(set).toEqual({ st: '5s', it: '7s' });
    } finally {
      await admin.query('ALTER ROLE api_user RESET statement_timeout');
      await admin.query('ALTER ROLE api_user RESET idle_in_transaction_session_timeout');
      await admin.end();
    }
  });

  it('makes exactly one GetSecretValue call for 50 concurrent cold queries', async () => {
    const db = database({ poolMax: 5 });
    secrets.resetCalls();

    await Promise.all(Array.from({ length: 50 }, (_, i) => db.query('SELECT $1::int AS n', [i])));

    expect(secrets.calls).toHaveLength(1);
  });

  it('refuses a server whose certificate is not signed by the configured CA, without retrying', async () => {
    const db = database({ sslCaFile: server.otherCaFile });

    const error = await db.query('SELECT 1').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TlsError);
    expect((error as TlsError).attempts).toBe(1);
    expect((error as Error).message).toMatch(/TLS verification of the database server failed/);
  });

  it('connects without TLS only when DB_SSL=disable says so', async () => {
    const db = database({ ssl: 'disable' });

    const { rows } = await db.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');

    expect(rows[0].ssl).toBe(false);
  });

  it('works from DATABASE_URL with a percent-encoded password of any characters', async () => {
    const url = `postgres://api_user:${encodeURIComponent(SPECIAL_PASSWORD)}@${server.host}:${server.port}/${dbName}`;
    const db = database({ secretId: undefined, databaseUrl: url });

    const { rows } = await db.query('SELECT current_user AS user');

    expect(db.credentialsSource).toBe('DATABASE_URL');
    expect(rows[0].user).toBe('api_user');
  });

  it('throws a typed constraint error and keeps the connection for the next query', async () => {
    const db = database({ poolMax: 1 });
    await db.query('CREATE TABLE IF NOT EXISTS uniq (email text PRIMARY KEY)');
    await db.query('TRUNCATE uniq');
    await db.query('INSERT INTO uniq VALUES ($1)', ['a@example.com']);
    const before = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    const error = await db.query('INSERT INTO uniq VALUES ($1)', ['a@example.com']).catch((e: unknown) => e);
    const after = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    expect(error).toBeInstanceOf(UniqueViolationError);
    expect(error).toMatchObject({ constraint: 'uniq_pkey', table: 'uniq', sqlState: '23505', retryable: false });
    expect(JSON.stringify(error)).not.toContain('a@example.com');
    expect(after).toBe(before);
  });
});

describe('getClient', () => {
  it('hands out a client the caller releases, and destroys one released inside a transaction', async () => {
    const db = database({ poolMax: 1 });
    const client = await db.getClient();
    await client.query('BEGIN');
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    client.release();
    const next = await db.getClient();
    const nextPid = (await next.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const status = (await next.query('SELECT now() = statement_timestamp() AS outside_tx')).rows[0].outside_tx;
    next.release();

    expect(nextPid).not.toBe(pid);
    expect(status).toBe(true);
  });

  it("refuses a release() kept from an earlier checkout instead of releasing the next holder's client", async () => {
    const db = database({ poolMax: 1 });
    const first = await db.getClient();
    const staleRelease = first.release;
    staleRelease();
    const second = await db.getClient();

    expect(second).toBe(first);
    expect(() => staleRelease()).toThrow(/already been released/);
    expect(db.poolCounts()).toMatchObject({ total: 1, idle: 0 });
    const { rows } = await second.query('SELECT 1 AS ok');
    second.release();

    expect(rows[0].ok).toBe(1);
    expect(db.poolCounts()).toMatchObject({ total: 1, idle: 1 });
  });

  it('times out a statement on a checked-out client and destroys that client at release', async () => {
    const db = database({ poolMax: 1, queryTimeoutMillis: 300 });
    const client = await db.getClient();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const startedAt = Date.now();

    const error = await client.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
    const millis = Date.now() - startedAt;
    client.release();
    const next = await db.getClient();
    const nextPid = (await next.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    next.release();

    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeLessThan(2000);
    expect(nextPid).not.toBe(pid);
  });

  it("clamps a checked-out client's statements to the deadline the caller gave, for callbacks too", async () => {
    const db = database();
    const client = await db.getClient({ deadline: Date.now() + 400 });

    const viaCallback = await new Promise<Error | null>((resolve) => void client.query('SELECT pg_sleep(5)', (err: Error | null) => resolve(err)));
    client.release();

    expect(viaCallback?.message).toBe('Query read timeout');
  });

  it("keeps a statement's own query_timeout within the deadline the caller gave, also 0 and through a callback", async () => {
    const db = database();
    const client = await db.getClient({ deadline: Date.now() + 500 });

    const longer = await elapsedOf(client.query({ text: 'SELECT pg_sleep(3)', query_timeout: 10_000 } as never));
    client.release();
    const other = await db.getClient({ deadline: Date.now() + 500 });
    const none = await elapsedOf(new Promise((resolve, reject) => void other.query({ text: 'SELECT pg_sleep(3)', query_timeout: 0, callback: (err: Error | null) => (err ? reject(err) : resolve(null)) } as never)));
    other.release();

    expect((longer.error as Error)?.message).toBe('Query read timeout');
    expect(longer.millis).toBeLessThan(1500);
    expect((none.error as Error)?.message).toBe('Query read timeout');
    expect(none.millis).toBeLessThan(1500);
  });

  it('destroys at release a client whose statement timed out through a callback given in the config object', async () => {
    const db = database({ poolMax: 1, queryTimeoutMillis: 300 });
    const client = await db.getClient();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    const error = await new Promise<Error | null>((resolve) => void client.query({ text: 'SELECT pg_sleep(5)', callback: (err: Error | null) => resolve(err) } as never));
    client.release();
    const startedAt = Date.now();
    const { rows } = await db.query('SELECT pg_backend_pid() AS pid');

    expect(error?.message).toBe('Query read timeout');
    expect(rows[0].pid).not.toBe(pid);
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('returns a client released with a statement still running only once the statement has finished, which settles as usual', async () => {
    const db = database({ poolMax: 1 });
    const client = await db.getClient();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    const abandoned = client.query('SELECT pg_sleep(0.3), 7 AS n');
    client.release();
    const countsWhileRunning = db.poolCounts();
    const next = await db.query('SELECT pg_backend_pid() AS pid');

    expect((await abandoned).rows[0].n).toBe(7);
    expect(countsWhileRunning).toMatchObject({ total: 1, idle: 0 });
    expect(next.rows[0].pid).toBe(pid);
    expect(() => client.release()).toThrow(/already been released/);
  });

  it('survives the backend being killed while a client is checked out', async () => {
    const db = database({ poolMax: 1, applicationName: 'killed-while-checked-out' });
    const client = await db.getClient();

    // An 'error' event the pool left unhandled would be an uncaught exception, which Jest reports as this test failing.
    await terminateBackends({ applicationName: 'killed-while-checked-out' });
    const error = await client.query('SELECT 1').catch((e: unknown) => e);
    client.release();
    const { rows } = await db.query('SELECT 1 AS ok');

    expect(error).toBeInstanceOf(Error);
    expect(rows[0].ok).toBe(1);
  });
});

describe('withTransaction', () => {
  beforeAll(async () => {
    const db = createDatabase({ secretId: 'api/db', sslCaFile: server.caFile, logLevel: 'silent' });
    await db.query('CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)');
    await db.close();
  });

  it('commits and returns the callback result', async () => {
    const db = database();

    const id = await db.withTransaction(async (client) => (await client.query('INSERT INTO notes (body) VALUES ($1) RETURNING id', ['kept'])).rows[0].id);
    const { rows } = await db.query('SELECT body FROM notes WHERE id = $1', [id]);

    expect(rows).toEqual([{ body: 'kept' }]);
  });

  it("keeps a statement's own query_timeout within the transaction's deadline", async () => {
    const db = database({ maxAttempts: 1 });

    const { millis, error } = await elapsedOf(db.withTransaction(async (client) => {
      await client.query({ text: 'SELECT pg_sleep(3)', query_timeout: 10_000 } as never);
    }, { deadline: Date.now() + 600 }));

    expect(error).toBeInstanceOf(QueryTimeoutError);
    expect(millis).toBeLessThan(1500);
  });

  it('rolls back and rethrows the very error object the callback threw', async () => {
    const db = database();
    const thrown = new Error('validation failed');

    const caught = await db.withTransaction(async (client) => {
      await client.query('INSERT INTO notes (body) VALUES ($1)', ['rolled back']);
      throw thrown;
    }).catch((e: unknown) => e);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM notes WHERE body = $1', ['rolled back']);

    expect(caught).toBe(thrown);
    expect(rows[0].n).toBe(0);
  });

  it.each(['read committed', 'repeatable read', 'serializable'] as const)('runs at isolation level %s', async (level) => {
    const db = database();

    const seen = await db.withTransaction(async (client) => (await client.query('SHOW transaction_isolation')).rows[0].transaction_isolation, { isolationLevel: level });

    expect(seen).toBe(level);
  });

  it('runs a read-only transaction that refuses writes', async () => {
    const db = database();

    const error = await db.withTransaction((client) => client.query("INSERT INTO notes (body) VALUES ('no')"), { readOnly: true }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ReadOnlyConnectionError);
    expect((error as ReadOnlyConnectionError).attempts).toBe(1);
  });

  it('refuses to report success when the callback swallowed a failed statement', async () => {
    const db = database();

    const error = await db.withTransaction(async (client) => {
      await client.query('INSERT INTO notes (body) VALUES ($1)', ['swallowed']);
      await client.query('SELECT 1/0').catch(() => undefined);
    }).catch((e: unknown) => e);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM notes WHERE body = $1', ['swallowed']);

    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect(rows[0].n).toBe(0);
  });

  it('rolls back, definitively, a transaction whose callback leaves no time before the deadline to COMMIT', async () => {
    const db = database();
    const body = `late-${Date.now()}`;

    const error = await db.withTransaction(async (client) => {
      await client.query('INSERT INTO notes (body) VALUES ($1)', [body]);
      await new Promise((resolve) => setTimeout(resolve, 400));
    }, { deadline: Date.now() + 300 }).catch((e: unknown) => e);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM notes WHERE body = $1', [body]);

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ phase: 'commit', ambiguous: false, retryable: false, attempts: 1 });
    expect(rows[0].n).toBe(0);
  });

  it('runs afterCommit callbacks only after a successful commit', async () => {
    const db = database();
    const sideEffects: string[] = [];

    await db.withTransaction(async (client, tx) => {
      tx.afterCommit(() => sideEffects.push('sent'));
      await client.query('INSERT INTO notes (body) VALUES ($1)', ['with side effect']);
    });
    await db.withTransaction(async (_client, tx) => {
      tx.afterCommit(() => sideEffects.push('never'));
      throw new Error('abort');
    }).catch(() => undefined);

    expect(sideEffects).toEqual(['sent']);
  });
});

/** A value pg cannot convert to a PostgreSQL value (JSON.stringify throws on it); it holds a marker to look for. */
function unconvertible(): Record<string, unknown> {
  const value: Record<string, unknown> = { marker: 'parameter-marker-4711' };
  value.self = value;
  return value;
}

describe('a parameter pg cannot convert', () => {
  it('fails query() with InvalidParameterError once, not retried even when idempotent, and the pool keeps serving', async () => {
    const retries: RetryEvent[] = [];
    const db = database({ poolMax: 1, hooks: { onRetry: (event) => retries.push(event) } });

    const error = await db.query('SELECT $1::text AS v', [unconvertible()], { idempotent: true }).catch((e: unknown) => e);
    const { rows } = await db.query('SELECT 1 AS n');

    expect(error).toBeInstanceOf(InvalidParameterError);
    expect(error).toMatchObject({ code: 'DB_INVALID_PARAMETER', attempts: 1, retryable: false, ambiguous: false });
    expect(retries).toEqual([]);
    expect(`${(error as Error).message} ${JSON.stringify(error)}`).not.toContain('parameter-marker-4711');
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('fails the same on a connection opened for it, with the credentials already cached', async () => {
    const retries: RetryEvent[] = [];
    const db = database({ poolMax: 2, hooks: { onRetry: (event) => retries.push(event) } });
    await db.query('SELECT 1');
    const held = await db.getClient();

    const error = await db.query('SELECT $1::text AS v', [unconvertible()], { idempotent: true }).catch((e: unknown) => e);
    held.release();

    expect(error).toBeInstanceOf(InvalidParameterError);
    expect(error).toMatchObject({ attempts: 1 });
    expect(retries).toEqual([]);
  });

  it('fails withTransaction once for a statement queued behind another on its client', async () => {
    const db = database();
    const runs: number[] = [];

    const error = await db.withTransaction(async (client, tx) => {
      runs.push(tx.attempt);
      await Promise.all([client.query('SELECT pg_sleep(0.05)'), client.query('INSERT INTO notes (body) VALUES ($1::text)', [unconvertible()])]);
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InvalidParameterError);
    expect(runs).toEqual([1]);
  });

  it('fails withTransaction without rerunning the callback, for text and for config objects, and commits nothing', async () => {
    const db = database();
    const runs: number[] = [];
    const statements = [
      (client: import('pg').PoolClient) => client.query('INSERT INTO notes (body) VALUES ($1::text)', [unconvertible()]),
      (client: import('pg').PoolClient) => client.query({ text: 'INSERT INTO notes (body) VALUES ($1::text)', values: [unconvertible()] }),
    ];

    for (const statement of statements) {
      const error = await db.withTransaction(async (client, tx) => {
        runs.push(tx.attempt);
        await client.query('INSERT INTO notes (body) VALUES ($1)', ['never committed']);
        return statement(client);
      }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(InvalidParameterError);
    }
    const { rows } = await db.query('SELECT count(*)::int AS n FROM notes WHERE body = $1', ['never committed']);

    expect(runs).toEqual([1, 1]);
    expect(rows[0].n).toBe(0);
  });
});

describe('credential rotation', () => {
  it('serves callers queued on the old pool when the secret names another user (alternating users)', async () => {
    await createRole('api_user_b', 'second-user-pass');
    try {
      const db = database({ poolMax: 1 });
      await db.query('SELECT 1');
      const held = await db.getClient();
      const queued = db.query<{ u: string }>('SELECT current_user AS u');
      await new Promise((resolve) => setTimeout(resolve, 20));

      secrets.putSecretValue('api/db', secretFor('second-user-pass', 'api_user_b'));
      db.clearCredentialsCache();
      const afterSwitch = await db.query<{ u: string }>('SELECT current_user AS u');
      held.release();
      const outcome = await queued.then((result) => result.rows[0].u, (e: unknown) => e);

      expect(afterSwitch.rows[0].u).toBe('api_user_b');
      expect(outcome).toBe('api_user');
    } finally {
      secrets.putSecretValue('api/db', secretFor(SPECIAL_PASSWORD));
    }
  });

  it('keeps serving through a rotation: old sessions keep working, new ones use the new password', async () => {
    const db = database({ poolMax: 1, applicationName: 'rotation-test' });
    await db.query('SELECT 1');
    await setRolePassword('api_user', 'rotated-1');
    secrets.putSecretValue('api/db', secretFor('rotated-1'));

    const onOldSession = await db.query('SELECT 1 AS ok');
    await terminateBackends({ applicationName: 'rotation-test' });
    const onNewSession = await db.query('SELECT 1 AS ok');

    expect(onOldSession.rows[0].ok).toBe(1);
    expect(onNewSession.rows[0].ok).toBe(1);
  });

  it('uses AWSPENDING when the database already has the new password but AWSCURRENT does not yet', async () => {
    const db = database({ poolMax: 1, applicationName: 'pending-test' });
    await db.query('SELECT 1');
    await setRolePassword('api_user', 'rotated-2');
    secrets.putSecretValue('api/db', secretFor('rotated-2'), ['AWSPENDING']);

    await terminateBackends({ applicationName: 'pending-test' });
    const { rows } = await db.query('SELECT 1 AS ok');

    expect(rows[0].ok).toBe(1);
    expect(secrets.calls.some((c) => c.versionStage === 'AWSPENDING')).toBe(true);
    secrets.promotePending('api/db');
  });

  it('fails with AuthenticationError when the password is wrong everywhere', async () => {
    secrets.putSecretValue('bad/db', secretFor('not-the-password'));
    const db = database({ secretId: 'bad/db', operationTimeoutMillis: 20_000, maxAttempts: 3 });

    const error = await db.query('SELECT 1').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).attempts).toBe(3);
    expect(JSON.stringify(error) + String((error as Error).stack)).not.toContain('not-the-password');
  });

  it('does not retry a password from DATABASE_URL that the database rejects: nothing can change it', async () => {
    const db = database({ secretId: undefined, databaseUrl: `postgres://api_user:Wrong-Url-Password@${server.host}:${server.port}/${dbName}`, maxAttempts: 5 });

    const error = await db.query('SELECT 1').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ message: 'The database rejected the password from DATABASE_URL (SQLSTATE 28P01).', retryable: false, attempts: 1 });
    expect(String((error as Error).stack) + inspect(error)).not.toContain('Wrong-Url-Password');
  });
});
