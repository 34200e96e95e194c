// createDatabase(): one configured instance (credentials, pool, retry budget) with query, getClient and
// withTransaction. The default instance behind db.ts is one of these; tests and a second database make their own.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { classifyStatementFailure } from './classify';
import { DbConfig, DbOptions, resolveDbConfig } from './config';
import { createCredentialsProvider, CredentialsProvider } from './credentials';
import { DbError } from './errors';
import { callHook, QueryEvent } from './hooks';
import { createLogger, isLevelEnabled } from './log';
import { createEmfReporter } from './metrics';
import { closedInstanceError, PoolManager } from './pool';
import { ClientSource, readerCredentials, ReadRouter } from './reader';
import { AttemptFailed, clampTimeoutMillis, DeadlineOptions, resolveDeadline, RetryBudget, RetryPolicy, retryAfter, withRetry } from './retry';
import { boundQueries, sendQuery, timedQuery } from './timed-query';
import { runTransaction, TransactionCallback, TransactionOptions } from './transaction';

/** Options of one query() call. */
export interface QueryOptions extends DeadlineOptions {
  /** The statement may safely run twice: retry it even when a lost connection leaves its outcome unknown. (Default: false) */
  readonly idempotent?: boolean;
  /** The statement only reads: a 25006 read-only error is then not taken as a failover. (Default: false) */
  readonly readOnly?: boolean;
  /** Retry after 55P03 lock_not_available. (Default: false) */
  readonly retryOnLockNotAvailable?: boolean;
}

/** Client counts of one pool. */
export interface PoolCounts {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/** What healthCheck() found. */
export interface HealthReport {
  readonly latencyMillis: number;
  readonly serverVersion: string;
  /** The user the session runs as (current_user). */
  readonly user: string;
  /** The TLS protocol of the connection, or null without TLS. */
  readonly tlsVersion: string | null;
  /** The TLS cipher, or null without TLS. */
  readonly tlsCipher: string | null;
  /** True when the server's certificate chain and host name were verified (DB_SSL=verify-full). */
  readonly certificateVerified: boolean;
  readonly credentialsSource: string;
  readonly pool: PoolCounts;
  readonly readerPool?: PoolCounts;
  /**
   * With a reader endpoint: one `SELECT 1` on the reader itself (no fallback to the writer), so a health check does
   * not report ok for reads that are silently going to the writer. `error` is the DbError code.
   */
  readonly reader?: { readonly ok: true; readonly latencyMillis: number } | { readonly ok: false; readonly error: string };
}

/** A configured database: the same methods the db.ts facade exports. */
export interface Database {
  readonly config: DbConfig;
  query<T extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[], options?: QueryOptions): Promise<QueryResult<T>>;
  getClient(options?: DeadlineOptions): Promise<PoolClient>;
  withTransaction<T>(fn: TransactionCallback<T>, options?: TransactionOptions): Promise<T>;
  getPool(): Promise<Pool>;
  /** Idle, waiting and total client counts of the current (writer) pool. */
  poolCounts(): PoolCounts;
  /** One round trip that reports what a connection check needs; throws the usual typed errors. */
  healthCheck(options?: DeadlineOptions): Promise<HealthReport>;
  /** Where credentials come from; safe to log. */
  readonly credentialsSource: string;
  clearCredentialsCache(): void;
  close(): Promise<void>;
}

/** Creates an independent database instance from options, the environment and defaults. */
export function createDatabase(options: DbOptions = {}): Database {
  const config = resolveDbConfig(options);
  const log = createLogger(config.logLevel, config.logger);
  const credentials: CredentialsProvider = createCredentialsProvider(config, log);
  const pool = new PoolManager(config, credentials, log);
  // The reader's own provider (with IAM, its own tokens), kept so that clearCredentialsCache() reaches it too.
  const readerSource = config.readerHost ? readerCredentials(credentials, config) : undefined;
  const readerPool = readerSource ? new PoolManager(config, readerSource, log) : undefined;
  const reads: ClientSource = readerPool ? new ReadRouter(pool, readerPool, log) : pool;
  const budget = new RetryBudget(config.retryBudget);
  const operations = new OperationCount();
  let closing = false;
  // The FunctionName dimension is the function's own name; applicationName (which may be set to anything) only stands in outside Lambda.
  const emf = config.metrics === 'emf' ? createEmfReporter(process.env.AWS_LAMBDA_FUNCTION_NAME?.trim() || config.applicationName) : undefined;
  // One structured line per operation: failures at info, successes at debug (DB_LOG_LEVEL; default warn logs neither).
  const logOperations = isLevelEnabled(config.logLevel, 'info');
  const logSuccesses = isLevelEnabled(config.logLevel, 'debug');
  // Read per call, as before: a hook set on the options object after createDatabase() still counts.
  const observed = () => Boolean(config.hooks.onQuery || emf || logOperations);

  const policy = (kind: RetryPolicy['kind'], deadline: number, idempotent: boolean, requestId?: string): RetryPolicy => ({
    kind, deadline, idempotent, budget,
    maxAttempts: config.maxAttempts,
    baseDelayMillis: config.retryBaseDelayMillis,
    maxDelayMillis: config.retryMaxDelayMillis,
    onRetry: config.hooks.onRetry,
    warn: requestId ? (message, fields) => log.warn(message, { ...fields, requestId }) : log.warn,
  });

  const report = (kind: QueryEvent['kind'], startedAt: number, requestId: string | undefined, outcome: { attempts: number; error?: unknown; rowCount?: number | null }) => {
    if (!observed()) return;
    const error = outcome.error instanceof DbError ? outcome.error : undefined;
    const event: QueryEvent = {
      kind, durationMillis: Date.now() - startedAt, attempts: error?.attempts ?? outcome.attempts, ok: outcome.error === undefined,
      errorCode: error?.code ?? (outcome.error ? 'UNKNOWN' : undefined), sqlState: error?.sqlState, rowCount: outcome.rowCount, requestId,
    };
    callHook(config.hooks.onQuery, event, log.warn);
    emf?.(event);
    if (!event.ok) log.info(`${kind} failed`, { ...event, pool: pool.counts() });
    else if (logSuccesses) log.debug(kind, { ...event, pool: pool.counts() });
  };

  /**
   * One query() attempt: a checkout, the statement with its timeout, the release; `done` gets the result, or else
   * the failure (classified, as AttemptFailed), once. On the writer pool the steps chain by callback, no promise.
   */
  function attemptStatement<T extends QueryResultRow>(source: ClientSource, text: string, values: unknown[] | undefined, deadline: number, validate: boolean, queryOptions: QueryOptions, done: (err: unknown, result?: QueryResult<T>) => void): void {
    const onClient = (err: unknown, client?: PoolClient) => {
      if (err || !client) {
        done(err);
        return;
      }
      const settle = (queryError: Error | null, result: QueryResult<T>) => {
        // Runs inside pg's socket handling: nothing may throw out of it (a release() called twice would).
        try {
          if (!queryError) {
            client.release();
            done(undefined, result);
            return;
          }
          const failure = classifyStatementFailure(queryError, 'statement', queryOptions);
          client.release(failure.destroyClient ? failure.error : undefined);
          done(new AttemptFailed(failure));
        } catch (thrown) {
          done(thrown);
        }
      };
      try {
        sendQuery<T>(client, text, values, clampTimeoutMillis(config.queryTimeoutMillis, deadline), settle);
      } catch (thrown) {
        // A throw comes before anything is sent; the client is discarded all the same rather than handed on.
        client.release(thrown instanceof Error ? thrown : true);
        done(thrown);
      }
    };
    if (source === pool) pool.acquireThen(deadline, validate, onClient);
    else source.acquire(deadline, validate).then((client) => onClient(undefined, client), onClient);
  }

  // query(), and healthCheck() unreported. Not an async function: the path of a query that succeeds at once is a
  // checkout, the statement and a release, settling one promise; only a failure builds the retry policy and loop.
  function runQuery<T extends QueryResultRow>(text: string, values: unknown[] | undefined, queryOptions: QueryOptions, reported: boolean): Promise<QueryResult<T>> {
    const startedAt = Date.now();
    let deadline: number;
    try {
      deadline = resolveDeadline(queryOptions, config.operationTimeoutMillis, startedAt);
    } catch (err) {
      return Promise.reject(err);
    }
    if (closing) return Promise.reject(closedInstanceError());
    const idempotent = queryOptions.idempotent === true;
    const source = queryOptions.readOnly ? reads : pool;
    const requestId = queryOptions.context?.awsRequestId;
    let attempts = 1;
    operations.started();
    const result = new Promise<QueryResult<T>>((resolve, reject) => {
      const retry = (attemptNumber: number) => {
        attempts = attemptNumber;
        return new Promise<QueryResult<T>>((settled, failed) => {
          attemptStatement<T>(source, text, values, deadline, !idempotent, queryOptions, (err, value) => (value ? settled(value) : failed(err)));
        });
      };
      const first = (err: unknown, value?: QueryResult<T>) => {
        if (value) {
          budget.refund();
          operations.finished();
          resolve(value);
        } else {
          retryAfter(err, retry, policy('query', deadline, idempotent, requestId)).then(
            (retried) => {
              operations.finished();
              resolve(retried);
            },
            (failed: unknown) => {
              operations.finished();
              reject(failed);
            },
          );
        }
      };
      try {
        attemptStatement<T>(source, text, values, deadline, !idempotent, queryOptions, first);
      } catch (thrown) {
        first(thrown);
      }
    });
    if (!reported || !observed()) return result;
    return result.then(
      (value) => {
        report('query', startedAt, requestId, { attempts, rowCount: value.rowCount });
        return value;
      },
      (err: unknown) => {
        report('query', startedAt, requestId, { attempts, error: err });
        throw err;
      },
    );
  }

  async function getClient(deadlineOptions: DeadlineOptions = {}): Promise<PoolClient> {
    const deadline = resolveDeadline(deadlineOptions, config.operationTimeoutMillis, Date.now());
    if (closing) throw closedInstanceError();
    // Only the connect phase is retried: what the caller runs on the client is the caller's (and pool.end() waits
    // for the caller to release it).
    operations.started();
    let client: PoolClient;
    try {
      client = await withRetry(() => pool.acquire(deadline, true), policy('connect', deadline, false));
    } finally {
      operations.finished();
    }
    // Every statement gets the client timeout (statement timeout + 2 s), clamped to a deadline the caller gave
    // (a Lambda context or an instant; the default operation budget only bounds the checkout). A statement that
    // times out may still run on the server: the client is then destroyed at release.
    const bounded = deadlineOptions.context !== undefined || deadlineOptions.deadline !== undefined;
    const timeoutMillis = () => (bounded ? clampTimeoutMillis(config.queryTimeoutMillis, deadline) : config.queryTimeoutMillis);
    const restore = boundQueries(client, timeoutMillis, {
      // What would make query() discard its client (a timeout, a lost connection) makes release() discard this one.
      observe: (err) => {
        if (classifyStatementFailure(err, 'statement').destroyClient) pool.markLost(client, err instanceof Error ? err : new Error(String(err)));
      },
    }, bounded ? () => deadline - Date.now() : undefined);
    const release = client.release;
    client.release = (err?: Error | boolean) => {
      restore();
      return release.call(client, err);
    };
    return client;
  }

  async function withTransaction<T>(fn: TransactionCallback<T>, txOptions: TransactionOptions = {}): Promise<T> {
    const startedAt = Date.now();
    const deadline = resolveDeadline(txOptions, config.operationTimeoutMillis, startedAt);
    const requestId = txOptions.context?.awsRequestId;
    if (closing) throw closedInstanceError();
    let attempts = 0;
    const counted: TransactionCallback<T> = (client, tx) => {
      attempts = tx.attempt;
      return fn(client, tx);
    };
    operations.started();
    try {
      const result = await runTransaction(txOptions.readOnly ? reads : pool, counted, txOptions, policy('transaction', deadline, false, requestId), config.queryTimeoutMillis);
      report('transaction', startedAt, requestId, { attempts });
      return result;
    } catch (err) {
      report('transaction', startedAt, requestId, { attempts, error: err });
      throw err;
    } finally {
      operations.finished();
    }
  }

  async function healthCheck(deadlineOptions: DeadlineOptions = {}): Promise<HealthReport> {
    const startedAt = Date.now();
    // One deadline for both probes, resolved once: a Lambda context's remaining time shrinks while the writer answers.
    const deadline = resolveDeadline(deadlineOptions, config.operationTimeoutMillis, startedAt);
    const { rows } = await runQuery<{ server_version: string; user: string; tls_version: string | null; tls_cipher: string | null }>(
      "SELECT current_setting('server_version') AS server_version, current_user AS user, s.version AS tls_version, s.cipher AS tls_cipher FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
      // Not reported as an operation: a health probe is not traffic (EMF metrics and onQuery count only the handler's calls).
      [], { ...deadlineOptions, deadline, idempotent: true }, false,
    );
    const tlsVersion = rows[0].tls_version ?? null;
    const reader = readerPool ? await probeReader(readerPool, deadline) : undefined;
    return {
      latencyMillis: Date.now() - startedAt,
      serverVersion: rows[0].server_version,
      user: rows[0].user,
      tlsVersion,
      tlsCipher: rows[0].tls_cipher ?? null,
      certificateVerified: tlsVersion !== null && config.ssl === 'verify-full',
      credentialsSource: credentials.description,
      pool: pool.counts(),
      ...(readerPool ? { readerPool: readerPool.counts(), reader } : {}),
    };
  }

  /** One round trip on the reader's own pool, without retries or fallback. */
  async function probeReader(readers: PoolManager, deadline: number): Promise<HealthReport['reader']> {
    const startedAt = Date.now();
    try {
      const client = await readers.acquire(deadline, false);
      try {
        await timedQuery(client, 'SELECT 1', undefined, clampTimeoutMillis(config.queryTimeoutMillis, deadline));
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      return { ok: true, latencyMillis: Date.now() - startedAt };
    } catch (err) {
      const error = err instanceof AttemptFailed ? err.failure.error : classifyStatementFailure(err, 'statement').error;
      return { ok: false, error: error.code };
    }
  }

  return {
    config,
    query: <T extends QueryResultRow>(text: string, values?: unknown[], queryOptions: QueryOptions = {}) => runQuery<T>(text, values, queryOptions, true),
    getClient,
    withTransaction,
    healthCheck,
    getPool: () => pool.getPool(),
    poolCounts: () => pool.counts(),
    credentialsSource: credentials.description,
    clearCredentialsCache: () => {
      credentials.clear();
      readerSource?.clear();
    },
    close: () => {
      // Calls already under way (waiting for credentials, between retries, rerunning a transaction) finish first,
      // on the pools as they are; new ones are refused. With none, the pools are closed at once.
      closing = true;
      const end = () => Promise.all([pool.end(), readerPool?.end()]).then(() => undefined);
      return operations.idle ? end() : operations.settled().then(end);
    },
  };
}

/** The operations under way (a query or transaction through its retries, a checkout), so that close() can wait for them. */
class OperationCount {
  private count = 0;
  private readonly waiting: Array<() => void> = [];

  started(): void {
    this.count++;
  }

  finished(): void {
    if (--this.count === 0) for (const wake of this.waiting.splice(0)) wake();
  }

  get idle(): boolean {
    return this.count === 0;
  }

  /** Resolves once no operation is under way. */
  settled(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }
}
