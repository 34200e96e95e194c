// The facade Lambda handlers import: query, getClient and withTransaction on one module-scoped database configured
// from the environment on first use (so it survives across invocations of a warm sandbox), plus createDatabase()
// for a second database or a test, and the error classes and option types.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import type { DbOptions } from './db/config';
import { createDatabase, Database, HealthReport, QueryOptions } from './db/database';
import type { DeadlineOptions } from './db/retry';
import type { TransactionCallback, TransactionOptions } from './db/transaction';

export * from './db/errors';
export { isAmbiguous, isRetryable } from './db/classify';
export { createDatabase } from './db/database';
export { resolveDbConfig } from './db/config';
export type { Database, HealthReport, PoolCounts, QueryOptions } from './db/database';
export type { AuthMode, DbConfig, DbOptions, IamTokenSigner, SecretSource, SslMode } from './db/config';
export type { DbCredentials } from './db/secret-format';
export type { DbHooks, QueryEvent, RetryEvent, CredentialsRefreshEvent } from './db/hooks';
export type { DbLogger, LogLevel } from './db/log';
export type { DeadlineOptions, LambdaContextLike } from './db/retry';
export type { IsolationLevel, TransactionCallback, TransactionContext, TransactionOptions } from './db/transaction';

let instance: Database | undefined;
/** Every close closePool() has started, so that a later call resolves only when they have all finished. */
let pendingClose: Promise<void> = Promise.resolve();
let sigtermInstalled = false;

/** Lambda allows 300 ms between SIGTERM and the end of the sandbox; drain within a little less. */
const SHUTDOWN_BUDGET_MILLIS = 250;

function database(): Database {
  if (!instance) {
    instance = createDatabase();
    if (instance.config.handleSigterm) installSigtermHandler();
  }
  return instance;
}

// Lambda sends SIGTERM before shutting a sandbox down when an extension is registered: close connections cleanly
// so the server does not log a broken session per sandbox. A listener replaces Node's default exit, hence exit().
function installSigtermHandler(): void {
  if (sigtermInstalled) return;
  sigtermInstalled = true;
  process.once('SIGTERM', () => {
    // Counted now as well as after the drain: an application's `once` listener registered after this one is still
    // listed now, but no longer once it has been called (it then owns the exit, and may still be running).
    const othersAtSignal = process.listenerCount('SIGTERM') > 0;
    const timer = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_BUDGET_MILLIS).unref());
    void Promise.race([closePool().catch(() => undefined), timer]).then(() => {
      if (!othersAtSignal && process.listenerCount('SIGTERM') === 0) process.exit(0);
    });
  });
}

/** `use(database())`, with a configuration error from creating the instance as a rejection rather than a throw. */
function withDatabase<R>(use: (db: Database) => Promise<R>): Promise<R> {
  try {
    return use(database());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Runs one statement on a pooled connection, retrying only where that cannot run it twice. */
export function query<T extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
  return withDatabase((db) => db.query<T>(text, values, options));
}

/** Checks out a client (connect-phase retries only); the caller must call `client.release()`. */
export function getClient(options?: DeadlineOptions): Promise<PoolClient> {
  return withDatabase((db) => db.getClient(options));
}

/** Runs `fn` inside BEGIN … COMMIT and returns its result; the whole callback is rerun when a retry is safe. */
export function withTransaction<T>(fn: TransactionCallback<T>, options?: TransactionOptions): Promise<T> {
  return withDatabase((db) => db.withTransaction(fn, options));
}

/**
 * Configures the default instance now (optionally with a secret id or options, which replace the current instance)
 * and opens its pool, fetching credentials once. Calling it is optional: the first query does the same.
 */
export async function initializePool(secretId?: string, options?: DbOptions): Promise<Pool> {
  if (secretId !== undefined || options !== undefined || !instance) {
    const previous = instance;
    // Replaced before the old one is closed, so a query racing this call cannot reopen the old pool.
    const next = createDatabase(secretId === undefined ? options : { ...options, secretId });
    instance = next;
    if (next.config.handleSigterm) installSigtermHandler();
    await previous?.close();
    // A later initializePool() may have replaced this instance meanwhile: hand out the pool that is kept. After a
    // closePool() there is none, and the closed instance says so.
    return (instance ?? next).getPool();
  }
  return instance.getPool();
}

/** The default instance's pg Pool (created on first use). Prefer query/withTransaction: they add the safety rules. */
export function getPool(): Promise<Pool> {
  return withDatabase((db) => db.getPool());
}

/** Ends the default instance's pool; the next call starts a new one. Safe to call twice and while queries run. */
export function closePool(): Promise<void> {
  const closing = instance;
  instance = undefined;
  // A second call (the SIGTERM handler and a listener of the application's, say) waits for the first one's close too.
  const closed = Promise.all([pendingClose, closing?.close()]).then(() => undefined);
  pendingClose = closed.catch(() => undefined);
  return closed;
}

/** One round trip reporting latency, server and TLS versions, certificate verification and pool counts. */
export function healthCheck(options?: DeadlineOptions): Promise<HealthReport> {
  return withDatabase((db) => db.healthCheck(options));
}

/** Drops cached credentials so the next new connection fetches them again (for tests and forced rotation). */
export function clearCredentialsCache(): void {
  instance?.clearCredentialsCache();
}
