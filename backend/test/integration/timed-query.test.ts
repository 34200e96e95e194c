// The client-side statement timeout of timed-query.ts against the real server: a statement fails at its own timeout
// with the error classify.ts maps to QueryTimeoutError, and every statement is timed anew; a parameter pg cannot
// convert is reported once, as InvalidParameterError.
import type { Client, PoolClient } from 'pg';
import { classifyStatementFailure } from '../../src/shared/db/classify';
import { InvalidParameterError, QueryTimeoutError } from '../../src/shared/db/errors';
import { sendQuery, timedQuery } from '../../src/shared/db/timed-query';
import { adminClient } from './support/postgres';

let client: Client;

// timedQuery takes a pool client; a plain connected Client has the same query() and is enough here.
const asPoolClient = (c: Client) => c as unknown as PoolClient;

async function elapsedOf(work: () => Promise<unknown>): Promise<{ millis: number; error?: unknown }> {
  const startedAt = Date.now();
  try {
    await work();
    return { millis: Date.now() - startedAt };
  } catch (error) {
    return { millis: Date.now() - startedAt, error };
  }
}

beforeEach(async () => {
  client = await adminClient();
});

afterEach(async () => {
  await client.end().catch(() => undefined);
});

describe('timedQuery', () => {
  it('answers like client.query() when the statement is in time', async () => {
    const { rows } = await timedQuery<{ n: number }>(asPoolClient(client), 'SELECT $1::int + 1 AS n', [41], 5000);

    expect(rows).toEqual([{ n: 42 }]);
  });

  it('fails a statement that outlives its timeout with the read-timeout error classify.ts maps to QueryTimeoutError', async () => {
    const { millis, error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(3)', undefined, 300));

    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('Query read timeout');
    expect(classifyStatementFailure(error, 'statement').error).toBeInstanceOf(QueryTimeoutError);
    expect(millis).toBeGreaterThanOrEqual(295);
    expect(millis).toBeLessThan(2500);
  });

  it('fails at the timeout itself, not earlier', async () => {
    const { millis, error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(3)', undefined, 700));

    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeGreaterThanOrEqual(695);
    expect(millis).toBeLessThan(2500);
  });

  it('times every statement anew: quick statements for longer than the timeout never time out', async () => {
    const startedAt = Date.now();
    let statements = 0;
    while (Date.now() - startedAt < 1000) {
      await timedQuery(asPoolClient(client), 'SELECT pg_sleep(0.01)', undefined, 300);
      statements++;
    }

    expect(statements).toBeGreaterThan(10);
  });

  it('still times a statement out after an idle wait longer than the timeout', async () => {
    await timedQuery(asPoolClient(client), 'SELECT 1', undefined, 200);
    await new Promise((resolve) => setTimeout(resolve, 400));

    const { millis, error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(3)', undefined, 200));

    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeLessThan(2500);
  });

  it('times each statement by its own timeout when the timeouts of one client differ', async () => {
    await timedQuery(asPoolClient(client), 'SELECT 1', undefined, 10_000);

    const { millis, error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(3)', undefined, 250));

    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeLessThan(2500);
  });

  it('sets no timeout for 0', async () => {
    const { error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(0.4)', undefined, 0));

    expect(error).toBeUndefined();
  });

  it('expires each statement in flight at its own time, whatever the order they started and finished in', async () => {
    const others = [await adminClient(), await adminClient()];
    try {
      const longer = elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT pg_sleep(4)', undefined, 1500));
      const quick = elapsedOf(() => timedQuery(asPoolClient(others[0]), 'SELECT pg_sleep(0.1)', undefined, 5000));
      const shorter = elapsedOf(() => timedQuery(asPoolClient(others[1]), 'SELECT pg_sleep(4)', undefined, 300));

      const [late, done, early] = await Promise.all([longer, quick, shorter]);

      expect(done.error).toBeUndefined();
      expect((early.error as Error).message).toBe('Query read timeout');
      expect(early.millis).toBeGreaterThanOrEqual(295);
      expect(early.millis).toBeLessThan(1200);
      expect((late.error as Error).message).toBe('Query read timeout');
      expect(late.millis).toBeGreaterThanOrEqual(1495);
      expect(late.millis).toBeLessThan(3500);
    } finally {
      await Promise.all(others.map((other) => other.end().catch(() => undefined)));
    }
  });

  it('takes a statement that times out while queued behind another out of the queue, so it never runs', async () => {
    const busy = timedQuery(asPoolClient(client), 'SELECT pg_sleep(0.6)', undefined, 0);
    const queued = elapsedOf(() => timedQuery(asPoolClient(client), "SELECT set_config('probe.ran', 'yes', false)", undefined, 200));

    const [{ error, millis }] = await Promise.all([queued, busy]);
    const { rows } = await timedQuery<{ ran: string | null }>(asPoolClient(client), "SELECT current_setting('probe.ran', true) AS ran", undefined, 5000);

    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeLessThan(550);
    expect(rows[0].ran ?? '').toBe('');
  });

  it('throws what the send throws, and calls back neither then nor at the timeout', async () => {
    const outcomes: unknown[] = [];
    const failingSend = (() => { throw new TypeError('refused before sending'); }) as unknown as PoolClient['query'];

    expect(() => sendQuery(asPoolClient(client), 'SELECT 1', undefined, 50, (err) => outcomes.push(err), failingSend)).toThrow('refused before sending');
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(outcomes).toEqual([]);
  });

  it('arms at most one timer for a run of statements, not one per statement', async () => {
    const armed = jest.spyOn(global, 'setTimeout');
    try {
      for (let i = 0; i < 50; i++) await timedQuery(asPoolClient(client), 'SELECT 1', undefined, 10_000);

      expect(armed.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      armed.mockRestore();
    }
  });

  it('takes a config object, with its own query_timeout and rowMode', async () => {
    const { rows } = await timedQuery(asPoolClient(client), { text: 'SELECT $1::int AS n', values: [7], rowMode: 'array' } as never, undefined, 5000);
    const { millis, error } = await elapsedOf(() => timedQuery(asPoolClient(client), { text: 'SELECT pg_sleep(3)', query_timeout: 250 } as never, undefined, 10_000));

    expect(rows).toEqual([[7]]);
    expect((error as Error).message).toBe('Query read timeout');
    expect(millis).toBeLessThan(2500);
  });
});

describe('a parameter pg cannot convert', () => {
  const circular: Record<string, unknown> = { id: 1 };
  circular.self = circular;
  const throwing = { toPostgres: () => { throw new RangeError('no PostgreSQL form for this value'); } };

  it.each([
    ['a circular object', circular, /circular/i],
    ['a toPostgres() that throws', throwing, /no PostgreSQL form/],
  ])('fails %s with InvalidParameterError, calls back once, and leaves the connection in step', async (_, value, cause) => {
    const outcomes: Array<Error | null> = [];
    sendQuery(asPoolClient(client), 'SELECT $1::text AS v', [value], 5000, (err) => outcomes.push(err));

    // The next statement is answered after the Sync pg sent for the failed one: any second call back has come by then.
    const { rows } = await timedQuery<{ n: number }>(asPoolClient(client), 'SELECT 2 AS n', undefined, 5000);

    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toBeInstanceOf(InvalidParameterError);
    expect(outcomes[0]).toMatchObject({ code: 'DB_INVALID_PARAMETER', retryable: false, ambiguous: false, phase: 'statement' });
    expect(((outcomes[0] as Error).cause as Error).message).toMatch(cause);
    expect(classifyStatementFailure(outcomes[0], 'statement', { inTransaction: true })).toMatchObject({ retry: 'never', destroyClient: true });
    expect(rows).toEqual([{ n: 2 }]);
  });

  it('does not mistake a server error for one', async () => {
    const { error } = await elapsedOf(() => timedQuery(asPoolClient(client), 'SELECT $1::int AS n', ['not a number'], 5000));

    expect(error).not.toBeInstanceOf(InvalidParameterError);
    expect(error).toMatchObject({ code: '22P02' });
  });
});
