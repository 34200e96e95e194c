// The client-side statement timeout of timed-query.ts against the real server: a statement fails at its own timeout
// with the error classify.ts maps to QueryTimeoutError, and every statement is timed anew.
import type { Client, PoolClient } from 'pg';
import { classifyStatementFailure } from '../../src/shared/db/classify';
import { QueryTimeoutError } from '../../src/shared/db/errors';
import { timedQuery } from '../../src/shared/db/timed-query';
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
});
