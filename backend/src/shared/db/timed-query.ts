// Sends one statement with its own client timeout as a pg.Query object. pg clones a plain query config on every
// call (and captures a new stack trace for its promise), which was the largest single cost of query() in the
// benchmarks; a Query instance is used as it is, and its timeout is honoured all the same.
import { Query, type PoolClient, type QueryResult, type QueryResultRow } from 'pg';

type QueryWithTimeout<T extends QueryResultRow> = Query & {
  query_timeout?: number;
  callback?: (err: Error | null, result: QueryResult<T>) => void;
};

/** Sends `text` on `client` (through `send`, e.g. the unwrapped client.query) with a client timeout in milliseconds. */
export function sendQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  text: string,
  values: unknown[] | undefined,
  timeoutMillis: number,
  callback: (err: Error | null, result: QueryResult<T>) => void,
  send: PoolClient['query'] = client.query,
): void {
  const query = new Query(text, values as never) as QueryWithTimeout<T>;
  query.query_timeout = timeoutMillis;
  query.callback = callback;
  (send as (query: unknown) => unknown).call(client, query);
}

/** sendQuery() as a promise. */
export function timedQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  text: string,
  values: unknown[] | undefined,
  timeoutMillis: number,
  send: PoolClient['query'] = client.query,
): Promise<QueryResult<T>> {
  return new Promise((resolve, reject) => {
    sendQuery<T>(client, text, values, timeoutMillis, (err, result) => (err ? reject(err) : resolve(result)), send);
  });
}
