// createDatabase(): one configured instance (credentials, pool, retry budget) with query, getClient and
// withTransaction. The default instance behind db.ts is one of these; tests and a second database make their own.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { classifyStatementFailure } from './classify';
import { DbConfig, DbOptions, resolveDbConfig } from './config';
import { createCredentialsProvider, CredentialsProvider } from './credentials';
import { DbError } from './errors';
import { callHook, QueryEvent } from './hooks';
import { createLogger } from './log';
import { PoolManager } from './pool';
import { AttemptFailed, clampTimeoutMillis, DeadlineOptions, resolveDeadline, RetryBudget, RetryPolicy, withRetry } from './retry';
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

/** A configured database: the same methods the db.ts facade exports. */
export interface Database {
  readonly config: DbConfig;
  query<T extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[], options?: QueryOptions): Promise<QueryResult<T>>;
  getClient(options?: DeadlineOptions): Promise<PoolClient>;
  withTransaction<T>(fn: TransactionCallback<T>, options?: TransactionOptions): Promise<T>;
  getPool(): Promise<Pool>;
  /** Idle, waiting and total client counts of the current pool. */
  poolCounts(): { total: number; idle: number; waiting: number };
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
  const budget = new RetryBudget(config.retryBudget);

  const policy = (kind: RetryPolicy['kind'], deadline: number, idempotent: boolean): RetryPolicy => ({
    kind, deadline, idempotent, budget,
    maxAttempts: config.maxAttempts,
    baseDelayMillis: config.retryBaseDelayMillis,
    maxDelayMillis: config.retryMaxDelayMillis,
    onRetry: config.hooks.onRetry,
    warn: log.warn,
  });

  const report = (kind: QueryEvent['kind'], startedAt: number, outcome: { attempts: number; error?: unknown; rowCount?: number | null }) => {
    if (!config.hooks.onQuery) return;
    const error = outcome.error instanceof DbError ? outcome.error : undefined;
    callHook(config.hooks.onQuery, {
      kind, durationMillis: Date.now() - startedAt, attempts: error?.attempts ?? outcome.attempts, ok: outcome.error === undefined,
      errorCode: error?.code ?? (outcome.error ? 'UNKNOWN' : undefined), sqlState: error?.sqlState, rowCount: outcome.rowCount,
    }, log.warn);
  };

  async function query<T extends QueryResultRow>(text: string, values?: unknown[], queryOptions: QueryOptions = {}): Promise<QueryResult<T>> {
    const startedAt = Date.now();
    const deadline = resolveDeadline(queryOptions, config.operationTimeoutMillis, startedAt);
    const idempotent = queryOptions.idempotent === true;
    let attempts = 0;
    try {
      const result = await withRetry(async (attempt) => {
        attempts = attempt;
        const client = await pool.acquire(deadline, !idempotent);
        try {
          const result = await client.query<T>({ text, values, query_timeout: clampTimeoutMillis(config.queryTimeoutMillis, deadline) } as never);
          client.release();
          return result;
        } catch (err) {
          const failure = classifyStatementFailure(err, 'statement', queryOptions);
          client.release(failure.destroyClient ? failure.error : undefined);
          throw new AttemptFailed(failure);
        }
      }, policy('query', deadline, idempotent));
      report('query', startedAt, { attempts, rowCount: result.rowCount });
      return result;
    } catch (err) {
      report('query', startedAt, { attempts, error: err });
      throw err;
    }
  }

  async function getClient(deadlineOptions: DeadlineOptions = {}): Promise<PoolClient> {
    const deadline = resolveDeadline(deadlineOptions, config.operationTimeoutMillis, Date.now());
    // Only the connect phase is retried: what the caller runs on the client is the caller's.
    return withRetry(() => pool.acquire(deadline, true), policy('connect', deadline, false));
  }

  async function withTransaction<T>(fn: TransactionCallback<T>, txOptions: TransactionOptions = {}): Promise<T> {
    const startedAt = Date.now();
    const deadline = resolveDeadline(txOptions, config.operationTimeoutMillis, startedAt);
    let attempts = 0;
    const counted: TransactionCallback<T> = (client, tx) => {
      attempts = tx.attempt;
      return fn(client, tx);
    };
    try {
      const result = await runTransaction(pool, counted, txOptions, policy('transaction', deadline, false), config.queryTimeoutMillis);
      report('transaction', startedAt, { attempts });
      return result;
    } catch (err) {
      report('transaction', startedAt, { attempts, error: err });
      throw err;
    }
  }

  return {
    config,
    query,
    getClient,
    withTransaction,
    getPool: () => pool.getPool(),
    poolCounts: () => pool.counts(),
    credentialsSource: credentials.description,
    clearCredentialsCache: () => credentials.clear(),
    close: () => pool.end(),
  };
}
