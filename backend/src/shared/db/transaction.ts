// withTransaction's engine: BEGIN, the caller's callback, COMMIT, with the whole callback retried when that is safe.
// A COMMIT that fails without an answer is settled, not guessed: the transaction id read before COMMIT is looked up
// with pg_xact_status() on a fresh connection (PostgreSQL 13+).
import type { PoolClient } from 'pg';
import { ClassifyOptions, classifyStatementFailure, Failure, isDefinitiveServerError, isServerError } from './classify';
import { CommitOutcomeUnknownError, ConfigurationError, ConnectionLostError, DbError, DeadlineExceededError, InvalidParameterError, TransactionAbortedError } from './errors';
import type { ClientSource } from './reader';
import { boundQueries, timedQuery } from './timed-query';
import { AttemptFailed, clampTimeoutMillis, DeadlineOptions, MIN_ATTEMPT_MILLIS, RetryPolicy, withRetry } from './retry';

/** The isolation levels PostgreSQL implements. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** Options of one withTransaction() call. */
export interface TransactionOptions extends DeadlineOptions {
  /** (Default: the server's, normally 'read committed') */
  readonly isolationLevel?: IsolationLevel;
  /** BEGIN ... READ ONLY; nothing to settle at COMMIT. (Default: false) */
  readonly readOnly?: boolean;
  /** Also rerun the callback after 55P03 lock_not_available. (Default: false) */
  readonly retryOnLockNotAvailable?: boolean;
}

/** Handed to the callback beside the client. */
export interface TransactionContext {
  /** Runs `fn` after COMMIT succeeded, once, in order; never for an attempt that rolled back. */
  afterCommit(fn: () => unknown): void;
  /** 1 on the first run of the callback, 2 on its first rerun, … */
  readonly attempt: number;
}

/** The callback of withTransaction(): it may run more than once, so keep side effects in afterCommit(). */
export type TransactionCallback<T> = (client: PoolClient, tx: TransactionContext) => Promise<T>;

const ISOLATION: Record<IsolationLevel, string> = {
  'read committed': ' ISOLATION LEVEL READ COMMITTED',
  'repeatable read': ' ISOLATION LEVEL REPEATABLE READ',
  serializable: ' ISOLATION LEVEL SERIALIZABLE',
};
const XID_SQL = 'SELECT pg_current_xact_id_if_assigned()::text AS xid';
const SETTLE_POLL_MILLIS = 100;
const SETTLE_MAX_MILLIS = 2000;
const SETTLE_MIN_MILLIS = 250;
/** pg refuses to send on a client it already knows is dead: such a COMMIT never reached the server. */
const NOT_SENT = /not queryable/i;
/** ERRORs that leave the outcome unknown (statement_completion_unknown, transaction_resolution_unknown): settled too. */
const OUTCOME_UNKNOWN = new Set(['40003', '08007']);

/** SQL for BEGIN with the requested isolation level and access mode; rejects unknown levels. */
export function beginStatement(options: TransactionOptions): string {
  const level = options.isolationLevel;
  if (level !== undefined && !Object.prototype.hasOwnProperty.call(ISOLATION, level)) {
    throw new ConfigurationError(`Expected isolationLevel to be one of ${Object.keys(ISOLATION).join(', ')}, got "${String(level)}".`);
  }
  return `BEGIN${level ? ISOLATION[level] : ''}${options.readOnly ? ' READ ONLY' : ''}`;
}

/** What the statements of one attempt's callback reported, for the decision after it. */
interface CallbackFailures {
  /** Every error pg gave the callback (raw, before typing), so that a rethrown one is known as the database's. */
  readonly seen: WeakSet<object>;
  /** The first failure that leaves the connection unfit (a client timeout: the statement may still run). */
  unfit?: DbError;
}

/**
 * Makes the client's promise-returning query() throw typed DbErrors for the duration of the callback, clamps each
 * statement's client timeout to the deadline (on a black-holed network nothing else would ever end it), and records
 * in `failures` what the statements reported, caught by the callback or not.
 */
function typeQueryErrors(client: PoolClient, inTransaction: ClassifyOptions, timeoutMillis: () => number, deadline: number, failures: CallbackFailures): () => void {
  return boundQueries(client, timeoutMillis, {
    observe: (err) => {
      if (err !== null && typeof err === 'object') failures.seen.add(err);
      const failure = classifyStatementFailure(err, 'statement', inTransaction);
      // A parameter pg could not convert was never sent: nothing of it can run later.
      if (failure.destroyClient && !(failure.error instanceof InvalidParameterError)) failures.unfit ??= failure.error;
    },
    map: (err) => classifyStatementFailure(err, 'statement', inTransaction).error,
  }, () => deadline - Date.now());
}

/** Whether `err` is the database's (a typed or raw server error, or one pg gave the callback), not the callback's own. */
function isDatabaseFailure(err: unknown, failures: CallbackFailures): boolean {
  return err instanceof DbError || isServerError(err) || (err !== null && typeof err === 'object' && failures.seen.has(err));
}

/** Decides what a failure before COMMIT means: the callback's own errors are never retried. */
function classifyBeforeCommit(err: unknown, failures: CallbackFailures, inTransaction: ClassifyOptions): Failure {
  if (isDatabaseFailure(err, failures)) return classifyStatementFailure(err, 'statement', inTransaction);
  return { error: new DbError('The transaction callback threw.', { cause: err }), retry: 'never', destroyClient: false, refreshCredentials: false, cost: 1, baseDelayMillis: 0 };
}

/** Whether so little is left before the deadline that a COMMIT sent now could only time out. */
const tooLateForCommit = (deadline: number) => deadline - Date.now() < MIN_ATTEMPT_MILLIS;

/** Runs one transaction attempt after attempt under `policy`, settling an ambiguous COMMIT. */
export async function runTransaction<T>(pool: ClientSource, fn: TransactionCallback<T>, options: TransactionOptions, policy: RetryPolicy, queryTimeoutMillis: number): Promise<T> {
  const begin = beginStatement(options);
  // Before COMMIT is sent, a lost connection is safe to rerun: an uncommitted transaction never commits.
  const inTransaction: ClassifyOptions = { ...options, inTransaction: true };
  const timeoutMillis = () => clampTimeoutMillis(queryTimeoutMillis, policy.deadline);
  const { result, callbacks } = await withRetry(async (attempt) => {
    const client = await pool.acquire(policy.deadline, true);
    const callbacks: Array<() => unknown> = [];
    const failures: CallbackFailures = { seen: new WeakSet() };
    const restore = typeQueryErrors(client, inTransaction, timeoutMillis, policy.deadline, failures);
    let xid: string | null = null;
    let result: T;
    try {
      await client.query(begin);
      result = await fn(client, { afterCommit: (f) => void callbacks.push(f), attempt });
      // A statement that timed out may still be running and commit with the rest: the callback may have caught its
      // error (or sent the write again), but this transaction is not committed; it is rolled back and rerun.
      if (failures.unfit) throw failures.unfit;
      // The transaction id is read only when a COMMIT can still follow in time (checked again below).
      if (!options.readOnly && !tooLateForCommit(policy.deadline)) xid = (await client.query(XID_SQL)).rows[0].xid;
      if (failures.unfit) throw failures.unfit; // a statement not awaited may have timed out meanwhile
    } catch (err) {
      restore();
      // After a timed-out statement, a later database error (the write sent again meeting the first one's row, say)
      // is a consequence of it: the timeout decides, and the run is rerun. The callback's own errors stay its own.
      const cause = failures.unfit && isDatabaseFailure(err, failures) ? failures.unfit : err;
      const failure = classifyBeforeCommit(cause, failures, inTransaction);
      // Closing the connection is the rollback when it died or a statement of the callback may still run on it.
      await rollback(client, err, failure.destroyClient || !!failures.unfit || !!pool.lostError(client), timeoutMillis());
      throw new AttemptFailed(failure, cause);
    }
    restore();
    if (tooLateForCommit(policy.deadline)) {
      // A COMMIT sent with almost no time left would most likely time out and turn a sound transaction into one to
      // settle: fail definitively instead. Closing the connection aborts the transaction on the server.
      client.release(new Error('deadline reached before COMMIT'));
      const late = new DeadlineExceededError('The deadline passed before COMMIT could be sent; the transaction was rolled back.', { phase: 'commit', ambiguous: false });
      throw new AttemptFailed(classifyStatementFailure(late, 'commit'));
    }
    try {
      const commit = await timedQuery(client, 'COMMIT', undefined, timeoutMillis());
      // COMMIT of a transaction whose error the callback swallowed answers ROLLBACK instead of failing.
      if (commit.command === 'ROLLBACK') {
        client.release();
        throw new AttemptFailed(classifyStatementFailure(new TransactionAbortedError('COMMIT rolled the transaction back: a statement inside it failed and its error was caught.', {}, { phase: 'commit', sqlState: '25P02' }), 'commit'));
      }
      client.release();
    } catch (err) {
      if (err instanceof AttemptFailed) throw err;
      if (isDefinitiveServerError(err) && !OUTCOME_UNKNOWN.has(err.code)) {
        client.release();
        throw new AttemptFailed(classifyStatementFailure(err, 'commit', options));
      }
      client.release(err instanceof Error ? err : new Error('COMMIT failed'));
      // Also the case of a socket that died after the last statement: pg marks the client unqueryable before it
      // emits 'error', so such a COMMIT is refused here without reaching the server.
      if (NOT_SENT.test((err as Error)?.message ?? '')) throw new AttemptFailed(classifyStatementFailure(err, 'statement', inTransaction));
      const outcome = xid === null ? 'committed' : await settleCommit(pool, xid, policy.deadline, queryTimeoutMillis);
      if (outcome === 'aborted') {
        const lost = new ConnectionLostError('The connection was lost during COMMIT and the transaction did not commit.', { cause: err, phase: 'commit', retryable: true });
        throw new AttemptFailed({ ...classifyStatementFailure(lost, 'commit'), retry: 'always' });
      }
      if (outcome !== 'committed') {
        throw new AttemptFailed({ ...classifyStatementFailure(err, 'commit'), error: new CommitOutcomeUnknownError(`The connection was lost during COMMIT and PostgreSQL could not tell whether transaction ${xid} committed.`, { cause: err }) });
      }
    }
    return { result, callbacks };
  }, policy);
  // After the retry loop, so that a failing side effect can never make a committed transaction run again.
  for (const callback of callbacks) {
    try {
      await callback();
    } catch (err) {
      policy.warn('An afterCommit callback threw; the transaction stays committed.', { error: (err as Error)?.name ?? 'Error' });
    }
  }
  return result;
}

async function rollback(client: PoolClient, original: unknown, connectionGone: boolean, timeoutMillis: number): Promise<void> {
  if (connectionGone) {
    client.release(new Error('connection lost inside a transaction'));
    return;
  }
  try {
    await timedQuery(client, 'ROLLBACK', undefined, timeoutMillis);
    client.release();
  } catch (rollbackError) {
    client.release(rollbackError instanceof Error ? rollbackError : new Error('ROLLBACK failed'));
    if (original instanceof Error && original.cause === undefined) {
      Object.defineProperty(original, 'cause', { value: rollbackError, configurable: true, writable: true });
    }
  }
}

/** Asks a fresh connection whether `xid` committed, polling briefly while it is still in progress. */
async function settleCommit(pool: ClientSource, xid: string, deadline: number, queryTimeoutMillis: number): Promise<'committed' | 'aborted' | 'unknown'> {
  // At least SETTLE_MIN_MILLIS even when COMMIT used up the deadline: asking beats guessing, and half of the Lambda
  // deadline's smallest reserve (500 ms) still leaves the handler time to answer.
  const giveUpAt = Date.now() + Math.min(SETTLE_MAX_MILLIS, Math.max(SETTLE_MIN_MILLIS, deadline - Date.now()));
  while (Date.now() < giveUpAt) {
    try {
      const client = await pool.acquire(giveUpAt, false);
      try {
        const sql = 'SELECT pg_xact_status($1::xid8) AS status';
        const { rows } = await timedQuery<{ status: string }>(client, sql, [xid], clampTimeoutMillis(queryTimeoutMillis, giveUpAt));
        client.release();
        if (rows[0].status === 'committed' || rows[0].status === 'aborted') return rows[0].status;
      } catch (err) {
        client.release(err instanceof Error ? err : new Error('settlement query failed'));
      }
    } catch {
      // The server may be restarting; keep asking until the deadline.
    }
    if (Date.now() + SETTLE_POLL_MILLIS >= giveUpAt) break;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MILLIS));
  }
  return 'unknown';
}
