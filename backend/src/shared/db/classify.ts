// Maps any failure (a PostgreSQL ERROR/FATAL, a socket error, a pg client error, our own DbError) to what the
// caller may do next: the typed error, whether and how a retry is safe, and what happens to the connection.
// Server errors are classified by SQLSTATE and severity; pg's own client errors carry no code, so their texts live here.
import {
  AmbiguousResultError, AuthenticationError, CommitOutcomeUnknownError, ConfigurationError, ConnectionError, ConnectionLostError,
  ConstraintViolationError, DbError, DbErrorOptions, DbPhase, DeadlockError, ExclusionViolationError,
  CheckViolationError, ForeignKeyViolationError, InvalidParameterError, LockNotAvailableError, NotNullViolationError, QueryError,
  PoolExhaustedError, QueryTimeoutError, ReadOnlyConnectionError, SerializationFailureError, ServerErrorFields, StatementTimeoutError,
  TlsError, TooManyConnectionsError, TransactionAbortedError, UniqueViolationError,
} from './errors';

/** `always`: safe to rerun; `idempotent`: only when the caller declared the statement idempotent; `never`. */
export type RetryRule = 'always' | 'idempotent' | 'never';

/** What a failure means for the operation that saw it. */
export interface Failure {
  error: DbError;
  retry: RetryRule;
  /** Destroy the connection instead of returning it to the pool. */
  destroyClient: boolean;
  /** Force a credentials refresh before the next attempt (28P01). */
  refreshCredentials: boolean;
  /** Retry-budget tokens a retry of this failure costs. */
  cost: number;
  baseDelayMillis: number;
  /** A per-class cap on retries, below the policy's own. */
  maxRetries?: number;
}

/** Context the classification depends on. */
export interface ClassifyOptions {
  readOnly?: boolean;
  retryOnLockNotAvailable?: boolean;
  /** Inside a transaction before COMMIT a lost connection is not ambiguous: an uncommitted transaction never commits. */
  inTransaction?: boolean;
}

interface PgServerError extends ServerErrorFields {
  code: string;
  message: string;
  severity: string;
}

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'ENETDOWN', 'EHOSTDOWN']);
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** pg-pool's only signal that the checkout queue (not the network) timed out. */
export const POOL_EXHAUSTED = /timeout exceeded when trying to connect/;
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH)/;
const CONNECTION_LOST = /Connection terminated|not queryable|socket hang up|write after end|This socket has been ended/i;
// FATAL codes that mean the session is gone (admin shutdown, crash shutdown, idle-session and idle-in-transaction timeouts).
const SESSION_ENDED = new Set(['57P01', '57P02', '57P05', '25P03', '08006', '08003', '08000']);

const DEFAULT_BASE_MILLIS = 50;

/** Severities whose English name pg reports: `S` is translated by the server's lc_messages, and pg drops `V`. */
const KNOWN_SEVERITIES = new Set(['ERROR', 'FATAL', 'PANIC']);
/** pg's refusals of a statement before it sends any of it (a misused prepared statement name, values not an array, no text). */
const NOT_SENT_BY_PG = /^(Prepared statements must be unique|Query values must be an array|A query must have either text or a name)/;
/** RDS checks IAM tokens through PAM, whose failures keep SQLSTATE 28000 (28P01 is only for passwords). */
const PAM_REJECTED = /PAM authentication failed/i;

/**
 * True for a server ERROR: the statement failed and the session goes on. On a server whose messages are translated
 * the severity is not "ERROR" but, say, "FEHLER": there only a SQLSTATE that ends the session makes it fatal.
 */
export function isDefinitiveServerError(err: unknown): err is PgServerError {
  if (!isServerError(err)) return false;
  if (KNOWN_SEVERITIES.has(err.severity)) return err.severity === 'ERROR';
  return !SESSION_ENDED.has(err.code) && !err.code.startsWith('08') && !err.code.startsWith('57P');
}

/** True for an error PostgreSQL sent (it has a SQLSTATE and a severity). */
export function isServerError(err: unknown): err is PgServerError {
  const e = err as PgServerError | null;
  return !!e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

function serverFields(e: PgServerError): ServerErrorFields {
  const { severity, detail, hint, position, schema, table, column, constraint } = e;
  // A data exception's detail quotes the input too (22P02 on json: `Token "…" is invalid.`).
  return { severity, detail: e.code.startsWith('22') ? undefined : detail, hint, position, schema, table, column, constraint };
}

function failure(error: DbError, retry: RetryRule, extra: Partial<Failure> = {}): Failure {
  return { error, retry, destroyClient: false, refreshCredentials: false, cost: 1, baseDelayMillis: DEFAULT_BASE_MILLIS, ...extra };
}

/**
 * Classifies a failure in the connect phase: nothing was sent, so any transient failure is safe to retry. `iamAuth`:
 * the password was an IAM token, so RDS's PAM rejection (28000) is a token to sign again, once, not a configuration error.
 */
export function classifyConnectFailure(err: unknown, iamAuth = false): Failure {
  if (err instanceof DbError) return failure(err, err.retryable ? 'always' : 'never');
  const opts: DbErrorOptions = { cause: err, phase: 'connect' };
  const e = err as { code?: string; message?: string; hostname?: string };
  if (isServerError(err)) {
    const s = err.code;
    if (s === '28P01') return failure(new AuthenticationError(`The database rejected the password for this user (SQLSTATE 28P01).`, { ...opts, sqlState: s, retryable: true }), 'always', { refreshCredentials: true, baseDelayMillis: 200 });
    if (s === '28000' && iamAuth && PAM_REJECTED.test(err.message)) {
      return failure(new AuthenticationError('The database rejected the IAM authentication token (SQLSTATE 28000); if this persists, check that the user has the rds_iam role and that the function may rds-db:connect as it.', { ...opts, sqlState: s, retryable: true }), 'always', { refreshCredentials: true, baseDelayMillis: 200, maxRetries: 1 });
    }
    if (s === '53300') return failure(new TooManyConnectionsError('The database has no free connection slots (SQLSTATE 53300).', { ...opts, sqlState: s, retryable: true }), 'always', { cost: 2, baseDelayMillis: 250, maxRetries: 2 });
    // 08P01 (protocol violation: e.g. a proxy refusing a startup parameter) would fail the same way every time.
    if (s === '57P03' || s === '57P01' || s === '57P02' || (s.startsWith('08') && s !== '08P01')) return failure(new ConnectionError(`The database is not accepting connections right now (SQLSTATE ${s}).`, { ...opts, sqlState: s, retryable: true }), 'always', { baseDelayMillis: 250 });
    return failure(new ConfigurationError(`The database refused the connection: ${err.message} (SQLSTATE ${s}); check the user, database name and pg_hba rules.`, { ...opts, sqlState: s }), 'never');
  }
  const code = e?.code ?? '';
  const message = e?.message ?? String(err);
  if (POOL_EXHAUSTED.test(message)) return failure(new PoolExhaustedError('No pooled connection became free in time: raise DB_POOL_MAX or release clients.', opts), 'never');
  if (code === 'ENOTFOUND') return failure(new ConfigurationError(`The database host name ${e.hostname ?? ''} does not resolve (ENOTFOUND); check DB_HOST or the secret's host.`.replace('  ', ' '), opts), 'never');
  if (TLS_CODE.test(code) || /does not support SSL|certificate|TLS|SSL/i.test(message) && !SOCKET_CODES.has(code)) {
    return failure(new TlsError(`TLS verification of the database server failed (${code || message}); check DB_SSL_CA_FILE or the CA bundle and the host name.`, opts), 'never');
  }
  if (/timeout/i.test(message) || code === 'ETIMEDOUT') return failure(new ConnectionError(`Connecting to the database timed out.`, { ...opts, retryable: true }), 'always', { cost: 2 });
  if (SOCKET_CODES.has(code) || CONNECTION_LOST.test(message)) return failure(new ConnectionError(`Connecting to the database failed (${code || 'connection closed'}).`, { ...opts, retryable: true }), 'always');
  return failure(new ConnectionError(`Connecting to the database failed: ${message}`, opts), 'never');
}

const STATEMENT_ERRORS: Record<string, typeof QueryError> = {
  '40001': SerializationFailureError, '40P01': DeadlockError, '25006': ReadOnlyConnectionError,
  '55P03': LockNotAvailableError, '57014': StatementTimeoutError, '25P02': TransactionAbortedError,
  '23505': UniqueViolationError, '23503': ForeignKeyViolationError, '23502': NotNullViolationError,
  '23514': CheckViolationError, '23P01': ExclusionViolationError,
  '40003': AmbiguousResultError, '08007': AmbiguousResultError,
};

/**
 * The server's message; a data exception (class 22) quotes the offending input after a colon (`invalid input syntax
 * for type uuid: "…"`, quotes inside it unescaped), so only the text before the first colon is kept.
 */
function safeServerMessage(err: PgServerError): string {
  if (!err.code.startsWith('22')) return err.message;
  return `${err.message.split(':')[0]} (SQLSTATE ${err.code})`;
}

/**
 * The raw error kept as `cause`, with the fields that can quote row or parameter values made non-enumerable (so
 * util.inspect and JSON.stringify skip them); for class 22 it is dropped entirely, since its message quotes input.
 */
function redactServerError(err: PgServerError): PgServerError | undefined {
  if (err.code.startsWith('22')) return undefined;
  for (const field of ['detail', 'where', 'internalQuery']) {
    if (Object.prototype.propertyIsEnumerable.call(err, field)) Object.defineProperty(err, field, { enumerable: false });
  }
  return err;
}

/** Maps a definitive server ERROR to its class and retry rule. */
function classifyServerError(err: PgServerError, phase: DbPhase, options: ClassifyOptions): Failure {
  const s = err.code;
  const cls = STATEMENT_ERRORS[s] ?? (s.startsWith('23') ? ConstraintViolationError : QueryError);
  const retry: RetryRule =
    s === '40001' || s === '40P01' ? 'always'
    : s === '25006' && !options.readOnly ? 'always'
    : s === '55P03' && options.retryOnLockNotAvailable ? 'always'
    : s === '40003' || s === '08007' ? 'idempotent'
    : 'never';
  const error = new cls(safeServerMessage(err), serverFields(err), { cause: redactServerError(err), phase, sqlState: s, retryable: retry === 'always', ambiguous: s === '40003' || s === '08007' });
  return failure(error, retry, { destroyClient: (s === '25006' && !options.readOnly) || s === '40003' || s === '08007' });
}

/**
 * Classifies a failure after the statement (or COMMIT) was handed to the connection: a server ERROR is definitive,
 * anything that loses the connection is ambiguous and destroys the client.
 */
export function classifyStatementFailure(err: unknown, phase: 'statement' | 'commit', options: ClassifyOptions = {}): Failure {
  if (err instanceof DbError) {
    // Already typed (a transaction callback's statement, a parameter pg could not convert): recover from the class
    // what it means for the connection. After a failed conversion pg's protocol state is its own affair: discarded.
    const destroyClient = err instanceof ConnectionLostError || err instanceof QueryTimeoutError || err instanceof AmbiguousResultError ||
      err instanceof InvalidParameterError || (err instanceof ReadOnlyConnectionError && err.retryable);
    return failure(err, err.retryable ? 'always' : err.ambiguous ? 'idempotent' : 'never', { destroyClient, cost: err instanceof QueryTimeoutError ? 2 : 1 });
  }
  if (isDefinitiveServerError(err)) return classifyServerError(err, phase, options);
  const text = (err as Error)?.message ?? '';
  if (NOT_SENT_BY_PG.test(text)) {
    return failure(new QueryError(`pg refused the statement before sending it: ${text}`, {}, { cause: err, phase: 'statement' }), 'never');
  }
  const opts: DbErrorOptions = { cause: err, phase, ambiguous: !options.inTransaction, retryable: !!options.inTransaction };
  const retry: RetryRule = options.inTransaction ? 'always' : 'idempotent';
  if (phase === 'commit') return failure(new CommitOutcomeUnknownError('The connection was lost during COMMIT.', { cause: err, phase, ambiguous: true, retryable: false }), 'never', { destroyClient: true });
  if (/Query read timeout/i.test(text)) {
    return failure(new QueryTimeoutError('The query timed out on the client; it may still run on the server.', opts), retry, { destroyClient: true, cost: 2 });
  }
  // pg refuses to send on a client it already knows is dead: nothing reached the server.
  if (/not queryable/i.test(text)) {
    return failure(new ConnectionLostError('The connection was already closed; the statement was not sent.', { ...opts, ambiguous: false, retryable: true }), 'always', { destroyClient: true });
  }
  const sqlState = isServerError(err) ? err.code : undefined;
  const what = sqlState && SESSION_ENDED.has(sqlState) ? `the server ended the session (SQLSTATE ${sqlState})` : 'the connection was lost';
  const message = options.inTransaction ? `The transaction was lost before COMMIT: ${what}.` : `The statement's outcome is unknown: ${what} after it was sent.`;
  return failure(new ConnectionLostError(message, { ...opts, sqlState }), retry, { destroyClient: true });
}

/** True when retrying the operation that threw `err` cannot run a statement twice. Accepts raw pg errors too. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof DbError) return err.retryable;
  if (isDefinitiveServerError(err)) return classifyServerError(err, 'statement', {}).retry === 'always';
  // Without the phase, only errors raised before any byte reached the server are known to be safe.
  return NEVER_CONNECTED.has((err as { code?: string } | null)?.code ?? '');
}

/** True when the statement or COMMIT behind `err` may have taken effect although the call failed. */
export function isAmbiguous(err: unknown): boolean {
  if (err instanceof DbError) return err.ambiguous;
  const code = (err as { code?: string } | null)?.code ?? '';
  if (NEVER_CONNECTED.has(code) || code === 'ENOTFOUND' || TLS_CODE.test(code)) return false;
  return classifyStatementFailure(err, 'statement').error.ambiguous;
}
