// Sends one statement with its own client timeout as a pg.Query object. pg clones a plain query config on every
// call (and captures a new stack trace for its promise), which was the largest single cost of query() in the
// benchmarks; a Query instance is used as it is, and its timeout is honoured all the same.
import { Query, type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { InvalidParameterError } from './errors';

type QueryWithTimeout<T extends QueryResultRow> = Query & {
  query_timeout?: number;
  callback?: (err: Error | null, result: QueryResult<T>) => void;
};

/** A statement as text, or as a query config object (name, rowMode, types, …) without a callback. */
export type Statement = string | QueryConfig;

/**
 * Sends `statement` on `client` (through `send`, e.g. the unwrapped client.query) with a client timeout in
 * milliseconds, unless a config object brings its own query_timeout. `callback` runs once.
 *
 * pg converts the parameters while it sends, and reports a conversion that throws (a circular object, a
 * toPostgres() that fails) before client.query() returns: such a failure arrives here as an InvalidParameterError,
 * since no answer of the server's can come that soon and the statement was not run. pg then calls back a second
 * time, when the server answers the Sync it sent after the failure; that call is ignored.
 */
export function sendQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  timeoutMillis: number,
  callback: (err: Error | null, result: QueryResult<T>) => void,
  send: PoolClient['query'] = client.query,
): void {
  const query = new Query(statement as never, values as never) as QueryWithTimeout<T>;
  const own = typeof statement === 'object' ? (statement as { query_timeout?: number }).query_timeout : undefined;
  query.query_timeout = own !== undefined ? own : timeoutMillis;
  let sending = true;
  let settled = false;
  query.callback = (err, result) => {
    if (settled) return;
    settled = true;
    callback(err && sending ? notRun(err) : err, result);
  };
  try {
    (send as (query: unknown) => unknown).call(client, query);
  } finally {
    sending = false;
  }
}

function notRun(cause: Error): InvalidParameterError {
  return new InvalidParameterError('A query parameter could not be converted to a PostgreSQL value (see cause); the statement was not run.', { cause, phase: 'statement' });
}

/** sendQuery() as a promise. */
export function timedQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  timeoutMillis: number,
  send: PoolClient['query'] = client.query,
): Promise<QueryResult<T>> {
  return new Promise((resolve, reject) => {
    sendQuery<T>(client, statement, values, timeoutMillis, (err, result) => (err ? reject(err) : resolve(result)), send);
  });
}
