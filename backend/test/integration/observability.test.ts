// Observability against a real server: onQuery events and CloudWatch EMF lines carry durations, attempts, the Lambda
// request id and error codes but never SQL text or parameter values; healthCheck() reports TLS and versions.
import { createDatabase, Database, QueryEvent } from '../../src/shared/db';
import { createRole, createTestDatabase, testServer } from './support/postgres';

const server = testServer();
let url: string;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];
const context = { getRemainingTimeInMillis: () => 10_000, awsRequestId: 'req-123' };

beforeAll(async () => {
  const created = await createTestDatabase('observe');
  dropDatabase = created.drop;
  await createRole('observe_user', 'observe-pass');
  url = `postgres://observe_user:observe-pass@${server.host}:${server.port}/${created.name}`;
});

afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await dropDatabase?.();
});

function database(options: Parameters<typeof createDatabase>[0] = {}): Database {
  const db = createDatabase({ databaseUrl: url, sslCaFile: server.caFile, logLevel: 'silent', ...options });
  open.push(db);
  return db;
}

/** Collects what is written to stdout (where EMF lines go) until the mocks are restored. */
function captureStdout(): string[] {
  const lines: string[] = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
}

describe('onQuery', () => {
  it('reports each call with its request id and error code, never its SQL or values', async () => {
    const events: QueryEvent[] = [];
    const db = database({ hooks: { onQuery: (e) => events.push(e) } });

    await db.query('SELECT $1::text AS secret_value', ['sensitive-parameter'], { context });
    await db.query('SELECT 1/0', [], { context }).catch(() => undefined);

    expect(events).toEqual([
      expect.objectContaining({ kind: 'query', ok: true, attempts: 1, rowCount: 1, requestId: 'req-123' }),
      expect.objectContaining({ kind: 'query', ok: false, errorCode: 'DB_QUERY', sqlState: '22012', requestId: 'req-123' }),
    ]);
    expect(JSON.stringify(events)).not.toMatch(/sensitive-parameter|secret_value|SELECT/);
  });

  it('calls a hook added to the hooks object after the instance was created', async () => {
    const events: QueryEvent[] = [];
    const hooks: { onQuery?: (event: QueryEvent) => void } = {};
    const db = database({ hooks });

    await db.query('SELECT 1');
    hooks.onQuery = (e) => events.push(e);
    await db.query('SELECT 1');

    expect(events).toEqual([expect.objectContaining({ kind: 'query', ok: true })]);
  });
});

describe('the structured log', () => {
  it('logs each operation with duration, attempts, pool counts and request id at debug, failures at info', async () => {
    const lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
    const capture = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields });
    const db = database({ logLevel: 'debug', logger: { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') } });

    await db.query('SELECT $1::text', ['sensitive-parameter'], { context });
    await db.query('SELECT 1/0', [], { context }).catch(() => undefined);

    expect(lines).toEqual([
      { level: 'debug', message: 'query', fields: expect.objectContaining({ durationMillis: expect.any(Number), attempts: 1, requestId: 'req-123', pool: { total: 1, idle: 1, waiting: 0 } }) },
      { level: 'info', message: 'query failed', fields: expect.objectContaining({ errorCode: 'DB_QUERY', sqlState: '22012', requestId: 'req-123' }) },
    ]);
    expect(JSON.stringify(lines)).not.toMatch(/sensitive-parameter|SELECT/);
  });

  it('stays silent about successful operations at the default level', async () => {
    const lines: string[] = [];
    const db = database({ logLevel: 'warn', logger: { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) } });

    await db.query('SELECT 1');

    expect(lines).toEqual([]);
  });
});

describe('DB_METRICS=emf', () => {
  it('prints one Embedded Metric Format line per operation', async () => {
    const lines = captureStdout();
    const db = database({ metrics: 'emf', applicationName: 'emf-test', retryBaseDelayMillis: 0 });

    await db.withTransaction(async (client, tx) => {
      // A serialization failure on the first attempt only, so that the transaction is retried exactly once.
      if (tx.attempt === 1) await client.query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$");
      return client.query('SELECT pg_sleep(0.02), $1::text', ['sensitive-parameter']);
    }, { context });
    await db.query('SELECT 1/0', [], { context }).catch(() => undefined);
    jest.restoreAllMocks();
    const emf = lines.map((line) => JSON.parse(line));

    expect(emf).toHaveLength(2);
    expect(emf[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'LambdaPg', Dimensions: [['FunctionName', 'Operation']] }] },
      FunctionName: 'emf-test', Operation: 'transaction', Operations: 1, Errors: 0, Retries: 1, requestId: 'req-123',
    });
    expect(emf[0]).not.toHaveProperty('errorCode');
    expect(emf[0].Duration).toBeGreaterThanOrEqual(15);
    expect(emf[1]).toMatchObject({ FunctionName: 'emf-test', Operation: 'query', Operations: 1, Errors: 1, Retries: 0, errorCode: 'DB_QUERY', requestId: 'req-123' });
    expect(lines.join('')).not.toContain('sensitive-parameter');
  });

  it("uses the function's name for the FunctionName dimension, whatever the applicationName", async () => {
    const lines = captureStdout();
    const saved = process.env.AWS_LAMBDA_FUNCTION_NAME;
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'orders-api';
    try {
      const db = database({ metrics: 'emf', applicationName: 'custom-app-name', handleSigterm: false });

      await db.query('SELECT 1');
    } finally {
      jest.restoreAllMocks();
      if (saved === undefined) delete process.env.AWS_LAMBDA_FUNCTION_NAME;
      else process.env.AWS_LAMBDA_FUNCTION_NAME = saved;
    }

    expect(lines.map((line) => JSON.parse(line))).toEqual([expect.objectContaining({ FunctionName: 'orders-api', Operation: 'query' })]);
  });
});

describe('healthCheck and the operation reports', () => {
  it('is not counted as an operation in onQuery events', async () => {
    const events: QueryEvent[] = [];
    const db = database({ hooks: { onQuery: (e) => events.push(e) } });

    await db.healthCheck();
    await db.query('SELECT 1');

    expect(events.map((e) => e.kind)).toEqual(['query']);
  });
});

describe('healthCheck', () => {
  it('reports the server version, the TLS protocol and a verified certificate', async () => {
    const db = database();

    const report = await db.healthCheck();

    expect(report).toMatchObject({
      serverVersion: expect.stringMatching(/^\d+\.\d+/),
      tlsVersion: expect.stringMatching(/^TLSv1\.[23]$/),
      certificateVerified: true,
      credentialsSource: 'DATABASE_URL',
      pool: { total: 1, idle: 1, waiting: 0 },
    });
  });

  it('says the certificate was not verified when DB_SSL=require', async () => {
    const db = database({ ssl: 'require', sslCaFile: undefined });

    const report = await db.healthCheck();

    expect(report.tlsVersion).not.toBeNull();
    expect(report.certificateVerified).toBe(false);
  });
});
