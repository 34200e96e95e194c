// The DbError tree and the one place that decides what a failure means: its phase, whether a retry is safe,
// and whether the statement may have run. Messages name things (secret id, variable, host), never values:
// a server's `detail` (which can quote row values) is kept on a non-enumerable property.

/** Where an operation was when it failed; it decides whether a retry can run a write twice. */
export type DbPhase = 'config' | 'credentials' | 'connect' | 'statement' | 'commit';

/** Fields every DbError carries besides its message. */
export interface DbErrorOptions {
  cause?: unknown;
  phase?: DbPhase;
  retryable?: boolean;
  ambiguous?: boolean;
  sqlState?: string;
  attempts?: number;
}

/** The base of every error this module throws; `code` is a stable string to switch on. */
export class DbError extends Error {
  readonly code: string = 'DB_ERROR';
  readonly phase: DbPhase;
  readonly retryable: boolean;
  /** True when the statement or COMMIT may have taken effect although the call failed. */
  readonly ambiguous: boolean;
  readonly sqlState?: string;
  attempts: number;

  constructor(message: string, options: DbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DbError';
    this.phase = options.phase ?? 'statement';
    this.retryable = options.retryable ?? false;
    this.ambiguous = options.ambiguous ?? false;
    this.sqlState = options.sqlState;
    this.attempts = options.attempts ?? 1;
  }
}

// Each subclass sets `name` explicitly because minifiers rename classes.
/** A configuration value (option or environment variable) is missing or malformed. */
export class ConfigurationError extends DbError {
  override readonly code = 'DB_CONFIGURATION';
  constructor(message: string, options: DbErrorOptions = {}) {
    super(message, { phase: 'config', ...options });
    this.name = 'ConfigurationError';
  }
}
/** Credentials could not be fetched from their source or are malformed. */
export class CredentialsError extends DbError {
  override readonly code = 'DB_CREDENTIALS';
  constructor(message: string, options: DbErrorOptions = {}) {
    super(message, { phase: 'credentials', ...options });
    this.name = 'CredentialsError';
  }
}
/** The connection could not be opened; nothing was sent. */
export class ConnectionError extends DbError {
  override readonly code: string = 'DB_CONNECTION';
  constructor(message: string, options: DbErrorOptions = {}) {
    super(message, { phase: 'connect', ...options });
    this.name = 'ConnectionError';
  }
}
/** The TLS handshake or certificate verification failed (wrong CA, host name mismatch, TLS not offered). */
export class TlsError extends ConnectionError {
  override readonly code = 'DB_TLS';
  override readonly name: string = 'TlsError';
}
/** The server rejected the credentials (28P01) even after a refresh. */
export class AuthenticationError extends ConnectionError {
  override readonly code = 'DB_AUTHENTICATION';
  override readonly name: string = 'AuthenticationError';
}
/** The server refused a new connection with 53300 too_many_connections. */
export class TooManyConnectionsError extends ConnectionError {
  override readonly code = 'DB_TOO_MANY_CONNECTIONS';
  override readonly name: string = 'TooManyConnectionsError';
}
/** No pooled client became free in time: the pool is saturated or a client was never released. */
export class PoolExhaustedError extends ConnectionError {
  override readonly code = 'DB_POOL_EXHAUSTED';
  override readonly name: string = 'PoolExhaustedError';
}
/** The operation's deadline (Lambda remaining time or the operation budget) ran out; `cause` is the last error. */
export class DeadlineExceededError extends DbError {
  override readonly code = 'DB_DEADLINE_EXCEEDED';
  override readonly name: string = 'DeadlineExceededError';
}
/** The connection was lost after the statement was sent; `ambiguous` says whether it may have run. */
export class ConnectionLostError extends DbError {
  override readonly code = 'DB_CONNECTION_LOST';
  override readonly name: string = 'ConnectionLostError';
}
/**
 * pg could not convert a query parameter to a PostgreSQL value (a circular object, a toPostgres() that threw); the
 * statement was not run. The conversion's own error is the `cause`.
 */
export class InvalidParameterError extends DbError {
  override readonly code = 'DB_INVALID_PARAMETER';
  override readonly name: string = 'InvalidParameterError';
}
/** The client-side query timeout fired; the statement may still be running on the server. */
export class QueryTimeoutError extends DbError {
  override readonly code = 'DB_QUERY_TIMEOUT';
  override readonly name: string = 'QueryTimeoutError';
}
/** COMMIT failed without an answer and PostgreSQL could not tell whether the transaction committed. */
export class CommitOutcomeUnknownError extends DbError {
  override readonly code = 'DB_COMMIT_OUTCOME_UNKNOWN';
  constructor(message: string, options: DbErrorOptions = {}) {
    super(message, { phase: 'commit', ambiguous: true, ...options });
    this.name = 'CommitOutcomeUnknownError';
  }
}

/** Server fields kept from a PostgreSQL ERROR; `detail` is non-enumerable because it can quote row values. */
export interface ServerErrorFields {
  severity?: string;
  detail?: string;
  hint?: string;
  position?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
}

/** A definitive server ERROR: the statement had no effect. */
export class QueryError extends DbError {
  override readonly code: string = 'DB_QUERY';
  readonly severity?: string;
  readonly hint?: string;
  readonly position?: string;
  readonly schema?: string;
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
  declare readonly detail?: string;

  constructor(message: string, fields: ServerErrorFields = {}, options: DbErrorOptions = {}) {
    super(message, options);
    this.name = 'QueryError';
    const { detail, ...rest } = fields;
    Object.assign(this, rest);
    Object.defineProperty(this, 'detail', { value: detail, enumerable: false });
  }
}

function queryErrorClass(name: string, code: string, base: typeof QueryError = QueryError): typeof QueryError {
  const cls = class extends base {
    override readonly code: string = code;
    constructor(message: string, fields?: ServerErrorFields, options?: DbErrorOptions) {
      super(message, fields, options);
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

/** 40001 serialization_failure: retried (autocommit statement, or the whole transaction). */
export const SerializationFailureError = queryErrorClass('SerializationFailureError', 'DB_SERIALIZATION_FAILURE');
/** 40P01 deadlock_detected: retried like a serialization failure. */
export const DeadlockError = queryErrorClass('DeadlockError', 'DB_DEADLOCK');
/** 25006 on a read-write operation: the connection reached a demoted writer (failover); retried on a new one. */
export const ReadOnlyConnectionError = queryErrorClass('ReadOnlyConnectionError', 'DB_READ_ONLY_CONNECTION');
/** 55P03 lock_not_available (NOWAIT or lock_timeout); retried only when asked. */
export const LockNotAvailableError = queryErrorClass('LockNotAvailableError', 'DB_LOCK_NOT_AVAILABLE');
/** 57014 statement_timeout fired on the server; the connection stays usable. */
export const StatementTimeoutError = queryErrorClass('StatementTimeoutError', 'DB_STATEMENT_TIMEOUT');
/** 25P02: a statement in the transaction failed earlier, so the rest is ignored until ROLLBACK. */
export const TransactionAbortedError = queryErrorClass('TransactionAbortedError', 'DB_TRANSACTION_ABORTED');
/** Any integrity constraint violation (class 23); `constraint`, `table` and `column` name what was violated. */
export const ConstraintViolationError = queryErrorClass('ConstraintViolationError', 'DB_CONSTRAINT_VIOLATION');
/** 40003 statement_completion_unknown or 08007 transaction_resolution_unknown: it may have run. */
export const AmbiguousResultError = queryErrorClass('AmbiguousResultError', 'DB_AMBIGUOUS_RESULT');
/** 23505 unique_violation. */
export const UniqueViolationError = queryErrorClass('UniqueViolationError', 'DB_UNIQUE_VIOLATION', ConstraintViolationError);
/** 23503 foreign_key_violation. */
export const ForeignKeyViolationError = queryErrorClass('ForeignKeyViolationError', 'DB_FOREIGN_KEY_VIOLATION', ConstraintViolationError);
/** 23502 not_null_violation. */
export const NotNullViolationError = queryErrorClass('NotNullViolationError', 'DB_NOT_NULL_VIOLATION', ConstraintViolationError);
/** 23514 check_violation. */
export const CheckViolationError = queryErrorClass('CheckViolationError', 'DB_CHECK_VIOLATION', ConstraintViolationError);
/** 23P01 exclusion_violation. */
export const ExclusionViolationError = queryErrorClass('ExclusionViolationError', 'DB_EXCLUSION_VIOLATION', ConstraintViolationError);

// The classes above are values; these aliases let callers also use them as types (`catch (e) { const u = e as UniqueViolationError }`).
export type SerializationFailureError = QueryError;
export type DeadlockError = QueryError;
export type ReadOnlyConnectionError = QueryError;
export type LockNotAvailableError = QueryError;
export type StatementTimeoutError = QueryError;
export type TransactionAbortedError = QueryError;
export type ConstraintViolationError = QueryError;
export type AmbiguousResultError = QueryError;
export type UniqueViolationError = QueryError;
export type ForeignKeyViolationError = QueryError;
export type NotNullViolationError = QueryError;
export type CheckViolationError = QueryError;
export type ExclusionViolationError = QueryError;
