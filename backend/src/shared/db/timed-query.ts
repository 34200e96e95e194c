// Sends one statement with its own client timeout as a pg.Query object. pg clones a plain query config on every
// call (and captures a new stack trace for its promise), which was the largest single cost of query() in the
// benchmarks; a Query instance is used as it is. The timeout is kept here rather than by pg, which arms and clears
// a timer per statement: one timer, armed for the earliest expiry, serves every statement in flight.
import { Query, type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { InvalidParameterError } from './errors';

/**
 * A pg.Query that knows when it is converting its parameters. pg converts them in prepare(), when the statement is
 * sent (at once on an idle client, later when queued), and reports a conversion that throws (a circular object, a
 * toPostgres() that fails) from inside prepare(); no answer of the server's is handled there.
 */
class ConvertingQuery<T extends QueryResultRow> extends Query {
  converting = false;
  /** pg called back with its outcome (an error, also one raised before sending, or the result), not a timeout. */
  answered = false;
  declare callback?: (err: Error | null, result: QueryResult<T>) => void;

  prepare(connection: unknown): void {
    this.converting = true;
    try {
      (Query.prototype as unknown as { prepare(connection: unknown): void }).prepare.call(this, connection);
    } finally {
      this.converting = false;
    }
  }

  handleError(err: Error, connection: unknown): void {
    this.answered = true;
    (Query.prototype as unknown as { handleError(err: Error, connection: unknown): void }).handleError.call(this, err, connection);
  }

  handleReadyForQuery(connection: unknown): void {
    this.answered = true;
    (Query.prototype as unknown as { handleReadyForQuery(connection: unknown): void }).handleReadyForQuery.call(this, connection);
  }
}

/** A statement in flight with a client timeout: a node of TimeoutWatch's list. */
interface Watched {
  readonly expiresAt: number;
  readonly expire: () => void;
  prev?: Watched;
  next?: Watched;
  /** False once it left the list (settled or expired). */
  listed: boolean;
}

/**
 * The client timeouts of all statements in flight, on one unref'd timer armed for the earliest expiry. A statement
 * that finishes only leaves the list (a doubly linked one: no hashing per statement); the timer, when it fires,
 * expires what is due and re-arms for the rest. In the usual run of statements each expiring later than the last,
 * the timer is armed once per timeout period, not once per statement. Like any timer it cannot fire while a Lambda
 * sandbox is frozen: it fires on thaw if it is due.
 */
const MAX_TIMER_MILLIS = 2 ** 31 - 1;

class TimeoutWatch {
  private head?: Watched;
  private tail?: Watched;
  private timer?: NodeJS.Timeout;
  private armedFor = Infinity;

  add(timeoutMillis: number, expire: () => void): Watched {
    const watched: Watched = { expiresAt: Date.now() + timeoutMillis, expire, prev: this.tail, next: undefined, listed: true };
    if (this.tail) this.tail.next = watched;
    else this.head = watched;
    this.tail = watched;
    if (watched.expiresAt < this.armedFor) this.arm(watched.expiresAt);
    return watched;
  }

  delete(watched: Watched): void {
    if (!watched.listed) return;
    watched.listed = false;
    if (watched.prev) watched.prev.next = watched.next;
    else this.head = watched.next;
    if (watched.next) watched.next.prev = watched.prev;
    else this.tail = watched.prev;
    watched.prev = watched.next = undefined;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    // setTimeout takes at most 2^31 - 1 ms (24.8 days); a later expiry re-arms when that passes.
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MILLIS, Math.max(0, at - Date.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    // Nothing in flight (the usual case once work stops): nothing to read, not even the clock.
    if (!this.head) return;
    const now = Date.now();
    const due: Watched[] = [];
    let next = Infinity;
    for (let watched: Watched | undefined = this.head; watched; watched = watched.next) {
      if (watched.expiresAt <= now) due.push(watched);
      else next = Math.min(next, watched.expiresAt);
    }
    for (const watched of due) this.delete(watched);
    if (next !== Infinity) this.arm(next);
    // Last: an expiry may start another statement, which arms the timer itself if it expires sooner.
    for (const watched of due) {
      try {
        watched.expire();
      } catch {
        // An expiry only settles a statement; one that throws must not keep the others from expiring.
      }
    }
  }
}

const timeouts = new TimeoutWatch();

/** A statement as text, or as a query config object (name, rowMode, types, …) without a callback. */
export type Statement = string | QueryConfig;

/**
 * Sends `statement` on `client` (through `send`, e.g. the unwrapped client.query) with a client timeout in
 * milliseconds (none for 0), unless a config object brings its own query_timeout, which is then kept within
 * `limitMillis` (what is left of a deadline; Infinity for none). `callback` runs once.
 *
 * When the timeout passes first, `callback` gets an error with the message of pg's own read timeout ("Query read
 * timeout"), which classify.ts maps to QueryTimeoutError: the statement may still run on the server, so the client
 * is discarded, as after pg's own timeout.
 *
 * A parameter pg cannot convert arrives here as an InvalidParameterError: the statement was not run. pg then calls
 * back a second time, when the server answers the Sync it sent after the failure; that call is ignored. A statement
 * that times out before pg sent it (queued behind another on the same client) is taken out of pg's queue, as pg's
 * own timeout does, so that it never runs after its caller was told it failed.
 */
export function sendQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  timeoutMillis: number,
  callback: (err: Error | null, result: QueryResult<T>) => void,
  send: PoolClient['query'] = client.query,
  limitMillis = Infinity,
): void {
  const query = new ConvertingQuery<T>(statement as never, values as never);
  const own = typeof statement === 'object' ? (statement as { query_timeout?: number }).query_timeout : undefined;
  // pg arms no timer of its own: the client's connection parameters carry no query_timeout and the Query none.
  const millis = own !== undefined ? ownTimeoutWithin(own, limitMillis) : timeoutMillis;
  let settled = false;
  let watched: Watched | undefined;
  const settle = (err: Error | null, result: QueryResult<T> | undefined) => {
    if (settled) return;
    settled = true;
    if (watched) timeouts.delete(watched);
    callback(err && query.converting ? notRun(err) : err, result as QueryResult<T>);
  };
  if (millis > 0) {
    watched = timeouts.add(millis, () => {
      unqueue(client, query);
      settle(new Error('Query read timeout'), undefined);
    });
  }
  query.callback = settle;
  try {
    (send as (query: unknown) => unknown).call(client, query);
  } catch (err) {
    // Thrown before anything was sent (pg checks some config fields outside its own error handling): the caller
    // gets the throw, and no later timeout or answer calls back.
    settled = true;
    if (watched) timeouts.delete(watched);
    throw err;
  }
}

/** Takes a statement pg has not sent yet out of the client's queue (pg 8 keeps it in `_queryQueue`). */
function unqueue(client: PoolClient, query: Query): void {
  const queue = (client as unknown as { _queryQueue?: unknown })._queryQueue;
  if (!Array.isArray(queue)) return;
  const index = queue.indexOf(query);
  if (index >= 0) queue.splice(index, 1);
}

function notRun(cause: Error): InvalidParameterError {
  return new InvalidParameterError('A query parameter could not be converted to a PostgreSQL value (see cause); the statement was not run.', { cause, phase: 'statement' });
}

/** A statement's own query_timeout (0: none) within what is left of a deadline (Infinity: none), at least 1 ms. */
function ownTimeoutWithin(own: number, limitMillis: number): number {
  return limitMillis === Infinity ? own : Math.max(1, Math.min(own || Infinity, limitMillis));
}

/** sendQuery() as a promise. */
export function timedQuery<T extends QueryResultRow = QueryResultRow>(
  client: PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  timeoutMillis: number,
  send: PoolClient['query'] = client.query,
  limitMillis = Infinity,
): Promise<QueryResult<T>> {
  return new Promise((resolve, reject) => {
    sendQuery<T>(client, statement, values, timeoutMillis, (err, result) => (err ? reject(err) : resolve(result)), send, limitMillis);
  });
}

/** Gives a query config (text or object, not a Submittable such as a cursor) a client timeout unless it has one. */
function withTimeout(config: unknown, timeoutMillis: () => number, limitMillis: () => number): unknown {
  if (typeof config === 'string') return { text: config, query_timeout: timeoutMillis() };
  const object = config as { submit?: unknown; query_timeout?: number } | null;
  if (!object || typeof object !== 'object' || typeof object.submit === 'function') return config;
  if (object.query_timeout === undefined) return { ...object, query_timeout: timeoutMillis() };
  const limit = limitMillis();
  return limit === Infinity ? config : { ...object, query_timeout: ownTimeoutWithin(object.query_timeout, limit) };
}

/** Text, or a plain query config object with no callback and no submit() of its own. */
function isStatement(config: unknown): config is Statement {
  if (typeof config === 'string') return true;
  const object = config as { submit?: unknown; callback?: unknown } | null;
  return !!object && typeof object === 'object' && object.submit === undefined && object.callback === undefined;
}

/** What {@link boundQueries} does with a failed statement. */
export interface QueryFailureHandling {
  /** Called with every failure, promise or callback style. */
  readonly observe?: (err: unknown) => void;
  /** What a promise-style query() rejects with instead (callbacks get pg's error as it is). */
  readonly map?: (err: unknown) => unknown;
}

/**
 * Replaces `client.query`, until the returned function is called, with one that gives every statement a client
 * timeout (`timeoutMillis()` when it is called; none for 0) and hands failures to `handling`. query(text or config,
 * values?) without a callback goes through sendQuery (one Query object, a parameter pg cannot convert reported as
 * such); callbacks keep pg's own path with pg's own query_timeout, and Submittables (cursors, streams) are passed on
 * as they are. A statement's own query_timeout is kept within `limitMillis()`, what is left of the caller's deadline.
 */
export function boundQueries(client: PoolClient, timeoutMillis: () => number, handling: QueryFailureHandling, limitMillis: () => number = () => Infinity): () => void {
  const raw = client.query;
  const { observe, map } = handling;
  const bound = function (this: PoolClient, config: unknown, ...rest: unknown[]) {
    let result: unknown;
    if (isStatement(config) && rest.length <= 1 && (rest[0] === undefined || Array.isArray(rest[0]))) {
      result = timedQuery(client, config, rest[0] as unknown[] | undefined, timeoutMillis(), raw, limitMillis());
    } else {
      const last = rest.length - 1;
      const observed = (callback: (err: unknown, ...results: unknown[]) => unknown) => (err: unknown, ...results: unknown[]) => {
        if (err) observe!(err);
        return callback(err, ...results);
      };
      if (observe && typeof rest[last] === 'function') rest[last] = observed(rest[last] as (err: unknown) => unknown);
      let sent = withTimeout(config, timeoutMillis, limitMillis);
      // pg also takes the callback inside the config object.
      const own = (sent as { callback?: unknown } | null)?.callback;
      if (observe && typeof own === 'function' && typeof (sent as { submit?: unknown }).submit !== 'function') sent = { ...(sent as object), callback: observed(own as (err: unknown) => unknown) };
      result = (raw as (...a: unknown[]) => unknown).apply(client, [sent, ...rest]);
    }
    if (result && typeof (result as Promise<unknown>).then === 'function' && (observe || map)) {
      return (result as Promise<unknown>).catch((err: unknown) => {
        observe?.(err);
        throw map ? map(err) : err;
      });
    }
    return result;
  };
  client.query = bound as PoolClient['query'];
  // Only while it is still this one: a release() kept from an earlier checkout must not unbind the next holder's.
  return () => {
    if (client.query === (bound as unknown)) delete (client as { query?: unknown }).query;
  };
}
