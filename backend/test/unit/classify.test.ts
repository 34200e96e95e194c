import { inspect } from 'node:util';
import { DatabaseError } from 'pg-protocol';
import { classifyConnectFailure, classifyStatementFailure, isAmbiguous, isRetryable } from '../../src/shared/db/classify';
import * as errors from '../../src/shared/db/errors';
import {
  AuthenticationError, CommitOutcomeUnknownError, ConfigurationError, ConnectionError, ConnectionLostError,
  ConstraintViolationError, DbError, PoolExhaustedError, QueryError, QueryTimeoutError, TlsError, TooManyConnectionsError,
} from '../../src/shared/db/errors';

type ServerFields = Partial<Pick<DatabaseError, 'detail' | 'hint' | 'position' | 'schema' | 'table' | 'column' | 'constraint'>>;

/** The error pg raises for an ErrorResponse, as pg-protocol builds it. */
function serverError(code: string, severity = 'ERROR', message = `server error ${code}`, fields: ServerFields = {}): DatabaseError {
  const err = new DatabaseError(message, message.length, 'error');
  return Object.assign(err, { code, severity, ...fields });
}

/** A Node socket, DNS or TLS error. */
function systemError(code: string, message = `connect ${code} 10.0.0.1:5432`): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyConnectFailure', () => {
  it.each(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET'])('retries %s as a ConnectionError', (code) => {
    const failure = classifyConnectFailure(systemError(code));

    expect(failure.error).toBeInstanceOf(ConnectionError);
    expect(failure.error).toMatchObject({ phase: 'connect', retryable: true, ambiguous: false });
    expect(failure).toMatchObject({ retry: 'always', destroyClient: false, refreshCredentials: false, cost: 1 });
  });

  it('keeps the socket error as the cause', () => {
    const socketError = systemError('ECONNREFUSED');

    const failure = classifyConnectFailure(socketError);

    expect(failure.error.cause).toBe(socketError);
  });

  it.each([
    ['ETIMEDOUT', systemError('ETIMEDOUT')],
    ['a pg connection timeout', new Error('Connection terminated due to connection timeout')],
  ])('retries %s at double cost', (_, err) => {
    const failure = classifyConnectFailure(err);

    expect(failure.error).toBeInstanceOf(ConnectionError);
    expect(failure).toMatchObject({ retry: 'always', cost: 2 });
  });

  describe('a PAM rejection (28000), as RDS answers a rejected IAM token', () => {
    const pam = () => serverError('28000', 'FATAL', 'PAM authentication failed for user "app"');

    it('signs a new token and retries once with DB_AUTH=iam', () => {
      const failure = classifyConnectFailure(pam(), true);

      expect(failure.error).toBeInstanceOf(AuthenticationError);
      expect(failure.error.message).toMatch(/rejected the IAM authentication token \(SQLSTATE 28000\).*rds_iam/);
      expect(failure).toMatchObject({ retry: 'always', refreshCredentials: true, maxRetries: 1 });
    });

    it('is a ConfigurationError with password authentication, and so is any other 28000 with IAM', () => {
      expect(classifyConnectFailure(pam()).error).toBeInstanceOf(ConfigurationError);
      expect(classifyConnectFailure(serverError('28000', 'FATAL', 'no pg_hba.conf entry for host "10.0.0.1"'), true).error).toBeInstanceOf(ConfigurationError);
    });
  });

  it('retries a connection the server closed during startup', () => {
    const failure = classifyConnectFailure(new Error('Connection terminated unexpectedly'));

    expect(failure.error).toBeInstanceOf(ConnectionError);
    expect(failure.retry).toBe('always');
  });

  it('retries a TLS handshake that was reset, which is a network failure and not a certificate problem', () => {
    const reset = systemError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established');

    const failure = classifyConnectFailure(reset);

    expect(failure.error).not.toBeInstanceOf(TlsError);
    expect(failure.error).toBeInstanceOf(ConnectionError);
    expect(failure.retry).toBe('always');
  });

  it.each(['57P03', '57P01', '57P02', '08001', '08004', '08006'])('retries FATAL %s at startup with a longer base delay', (code) => {
    const failure = classifyConnectFailure(serverError(code, 'FATAL'));

    expect(failure.error).toBeInstanceOf(ConnectionError);
    expect(failure.error.sqlState).toBe(code);
    expect(failure.retry).toBe('always');
    expect(failure.baseDelayMillis).toBeGreaterThanOrEqual(250);
  });

  it('does not retry 08P01 (protocol violation) at startup: it is configuration, not a passing state', () => {
    const failure = classifyConnectFailure(serverError('08P01', 'FATAL', 'unsupported startup parameter: statement_timeout'));

    expect(failure.error).toBeInstanceOf(ConfigurationError);
    expect(failure.retry).toBe('never');
  });

  it('retries 53300 at most twice, with a base of at least 250 ms and double cost', () => {
    const failure = classifyConnectFailure(serverError('53300', 'FATAL', 'sorry, too many clients already'));

    expect(failure.error).toBeInstanceOf(TooManyConnectionsError);
    expect(failure).toMatchObject({ retry: 'always', cost: 2, maxRetries: 2 });
    expect(failure.baseDelayMillis).toBeGreaterThanOrEqual(250);
  });

  it('refreshes the credentials before retrying 28P01', () => {
    const failure = classifyConnectFailure(serverError('28P01', 'FATAL', 'password authentication failed for user "app"'));

    expect(failure.error).toBeInstanceOf(AuthenticationError);
    expect(failure).toMatchObject({ retry: 'always', refreshCredentials: true });
  });

  it.each([
    ['28000', 'no pg_hba.conf entry for host "10.0.0.1", user "app", database "app", no encryption'],
    ['3D000', 'database "app" does not exist'],
  ])('treats FATAL %s as a configuration error', (code, message) => {
    const failure = classifyConnectFailure(serverError(code, 'FATAL', message));

    expect(failure.error).toBeInstanceOf(ConfigurationError);
    expect(failure.retry).toBe('never');
  });

  it('treats a host name that does not resolve as a configuration error naming the host', () => {
    const notFound = Object.assign(systemError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.invalid'), { hostname: 'db.invalid' });

    const failure = classifyConnectFailure(notFound);

    expect(failure.error).toBeInstanceOf(ConfigurationError);
    expect(failure.error.message).toContain('db.invalid');
    expect(failure.retry).toBe('never');
  });

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', systemError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain')],
    ['ERR_TLS_CERT_ALTNAME_INVALID', systemError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames")],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', systemError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')],
    ['a server without TLS', new Error('The server does not support SSL connections')],
  ])('never retries a TLS failure: %s', (_, err) => {
    const failure = classifyConnectFailure(err);

    expect(failure.error).toBeInstanceOf(TlsError);
    expect(failure.retry).toBe('never');
  });

  it('never retries a pool checkout timeout', () => {
    const failure = classifyConnectFailure(new Error('timeout exceeded when trying to connect'));

    expect(failure.error).toBeInstanceOf(PoolExhaustedError);
    expect(failure.retry).toBe('never');
  });

  it('passes a DbError through with its own retry rule', () => {
    const exhausted = new PoolExhaustedError('No pooled connection became free in time.');
    const transient = new ConnectionError('stale', { retryable: true });

    expect(classifyConnectFailure(exhausted)).toMatchObject({ error: exhausted, retry: 'never' });
    expect(classifyConnectFailure(transient)).toMatchObject({ error: transient, retry: 'always' });
  });
});

describe('classifyStatementFailure', () => {
  describe('a definitive server ERROR', () => {
    it.each([
      ['40001', 'SerializationFailureError'],
      ['40P01', 'DeadlockError'],
    ])('retries %s and keeps the client', (code, name) => {
      const failure = classifyStatementFailure(serverError(code), 'statement');

      expect(failure.error.name).toBe(name);
      expect(failure.error).toMatchObject({ retryable: true, ambiguous: false, sqlState: code, phase: 'statement' });
      expect(failure).toMatchObject({ retry: 'always', destroyClient: false });
    });

    it('retries 40001 at COMMIT too', () => {
      const failure = classifyStatementFailure(serverError('40001'), 'commit');

      expect(failure.error.name).toBe('SerializationFailureError');
      expect(failure.error.phase).toBe('commit');
      expect(failure.retry).toBe('always');
    });

    it('retries 25006 on a new connection when the operation was not read-only', () => {
      const failure = classifyStatementFailure(serverError('25006', 'ERROR', 'cannot execute INSERT in a read-only transaction'), 'statement');

      expect(failure.error.name).toBe('ReadOnlyConnectionError');
      expect(failure).toMatchObject({ retry: 'always', destroyClient: true });
    });

    it('does not retry 25006 in an operation declared read-only', () => {
      const failure = classifyStatementFailure(serverError('25006'), 'statement', { readOnly: true });

      expect(failure.retry).toBe('never');
      expect(failure.error.retryable).toBe(false);
    });

    it('retries 55P03 only when asked', () => {
      const plain = classifyStatementFailure(serverError('55P03'), 'statement');
      const optedIn = classifyStatementFailure(serverError('55P03'), 'statement', { retryOnLockNotAvailable: true });

      expect(plain.error.name).toBe('LockNotAvailableError');
      expect(plain).toMatchObject({ retry: 'never', destroyClient: false });
      expect(optedIn.retry).toBe('always');
    });

    it.each([
      ['57014', 'StatementTimeoutError'],
      ['25P02', 'TransactionAbortedError'],
      ['42P01', 'QueryError'],
      ['22P02', 'QueryError'],
    ])('never retries %s and keeps the client', (code, name) => {
      const failure = classifyStatementFailure(serverError(code), 'statement');

      expect(failure.error.name).toBe(name);
      expect(failure.error).toBeInstanceOf(QueryError);
      expect(failure).toMatchObject({ retry: 'never', destroyClient: false });
    });

    it.each([
      ['23505', 'UniqueViolationError'],
      ['23503', 'ForeignKeyViolationError'],
      ['23502', 'NotNullViolationError'],
      ['23514', 'CheckViolationError'],
      ['23P01', 'ExclusionViolationError'],
      ['23000', 'ConstraintViolationError'],
    ])('maps %s to %s, a ConstraintViolationError that is never retried', (code, name) => {
      const failure = classifyStatementFailure(serverError(code, 'ERROR', 'violation', { constraint: 'users_email_key', table: 'users', column: 'email' }), 'statement');

      expect(failure.error.name).toBe(name);
      expect(failure.error).toBeInstanceOf(ConstraintViolationError);
      expect(failure.error).toMatchObject({ constraint: 'users_email_key', table: 'users', column: 'email' });
      expect(failure).toMatchObject({ retry: 'never', destroyClient: false });
    });

    it('keeps the server fields of a QueryError', () => {
      const failure = classifyStatementFailure(serverError('42703', 'ERROR', 'column "emial" does not exist', { hint: 'Perhaps you meant "email".', position: '8' }), 'statement');

      expect(failure.error).toMatchObject({ message: 'column "emial" does not exist', sqlState: '42703', severity: 'ERROR', hint: 'Perhaps you meant "email".', position: '8' });
    });

    it('keeps detail readable but out of JSON.stringify', () => {
      const detail = 'Key (email)=(a@b.com) already exists.';

      const error = classifyStatementFailure(serverError('23505', 'ERROR', 'duplicate key value violates unique constraint "users_email_key"', { detail }), 'statement').error as QueryError;

      expect(error.detail).toBe(detail);
      expect(Object.keys(error)).not.toContain('detail');
      expect(JSON.stringify(error)).not.toContain('a@b.com');
    });

    it.each(['40003', '08007'])('re-sends %s only when idempotent, and destroys the client', (code) => {
      const failure = classifyStatementFailure(serverError(code), 'statement');

      expect(failure.error).toMatchObject({ ambiguous: true, retryable: false });
      expect(failure).toMatchObject({ retry: 'idempotent', destroyClient: true });
    });

    it.each(['40003', '08007'])('reports %s as an AmbiguousResultError', (code) => {
      const failure = classifyStatementFailure(serverError(code), 'statement');

      expect(failure.error.name).toBe('AmbiguousResultError');
    });
  });

  describe('a server whose messages are translated (lc_messages), so that pg reports the severity in that language', () => {
    it('keeps an ERROR definitive by its SQLSTATE', () => {
      const failure = classifyStatementFailure(serverError('23505', 'FEHLER', 'doppelter Schlüsselwert verletzt Unique-Constraint'), 'statement');

      expect(failure.error.name).toBe('UniqueViolationError');
      expect(failure).toMatchObject({ retry: 'never', destroyClient: false });
      expect(failure.error.ambiguous).toBe(false);
    });

    it('still retries a translated serialization failure, and reports it retryable', () => {
      expect(classifyStatementFailure(serverError('40001', 'FEHLER'), 'statement').retry).toBe('always');
      expect(isRetryable(serverError('40001', 'FEHLER'))).toBe(true);
    });

    it.each(['57P01', '25P03', '08006'])('treats a translated %s, which ends the session, as a lost connection', (code) => {
      const failure = classifyStatementFailure(serverError(code, 'SCHWERWIEGEND'), 'statement');

      expect(failure.error).toBeInstanceOf(ConnectionLostError);
      expect(failure.destroyClient).toBe(true);
    });
  });

  describe("pg's refusal of a statement before it sends any of it", () => {
    it.each([
      "Prepared statements must be unique - 'q' was used for a different statement",
      'Query values must be an array',
      'A query must have either text or a name. Supplying neither is unsupported.',
    ])('is a QueryError that is neither retried nor ambiguous, and keeps the client: %s', (message) => {
      const failure = classifyStatementFailure(new Error(message), 'statement', { inTransaction: true });

      expect(failure.error).toBeInstanceOf(QueryError);
      expect(failure.error).toMatchObject({ retryable: false, ambiguous: false, phase: 'statement' });
      expect(failure).toMatchObject({ retry: 'never', destroyClient: false });
      expect(isAmbiguous(new Error(message))).toBe(false);
    });
  });

  describe('a lost connection after the statement was sent', () => {
    it.each([
      ['socket loss', new Error('Connection terminated unexpectedly')],
      ['ECONNRESET', systemError('ECONNRESET', 'read ECONNRESET')],
      ['FATAL 57P01', serverError('57P01', 'FATAL', 'terminating connection due to administrator command')],
      ['FATAL 57P02', serverError('57P02', 'FATAL')],
      ['FATAL 57P05', serverError('57P05', 'FATAL', 'terminating connection due to idle-session timeout')],
      ['FATAL 25P03', serverError('25P03', 'FATAL', 'terminating connection due to idle-in-transaction timeout')],
      ['FATAL 08006', serverError('08006', 'FATAL')],
    ])('treats %s as ambiguous: retried only when idempotent, client destroyed', (_, err) => {
      const failure = classifyStatementFailure(err, 'statement');

      expect(failure.error).toBeInstanceOf(ConnectionLostError);
      expect(failure.error).toMatchObject({ ambiguous: true, retryable: false, phase: 'statement' });
      expect(failure).toMatchObject({ retry: 'idempotent', destroyClient: true });
    });

    it('names the SQLSTATE of a FATAL without its message', () => {
      const failure = classifyStatementFailure(serverError('57P01', 'FATAL'), 'statement');

      expect(failure.error.sqlState).toBe('57P01');
      expect(failure.error.message).toContain('57P01');
    });

    it('treats a client query timeout as ambiguous, destroys the client and charges double', () => {
      const failure = classifyStatementFailure(new Error('Query read timeout'), 'statement');

      expect(failure.error).toBeInstanceOf(QueryTimeoutError);
      expect(failure.error.ambiguous).toBe(true);
      expect(failure).toMatchObject({ retry: 'idempotent', destroyClient: true, cost: 2 });
    });

    it('inside a transaction before COMMIT, makes a lost connection non-ambiguous and retryable', () => {
      const failure = classifyStatementFailure(new Error('Connection terminated unexpectedly'), 'statement', { inTransaction: true });

      expect(failure.error).toBeInstanceOf(ConnectionLostError);
      expect(failure.error).toMatchObject({ ambiguous: false, retryable: true });
      expect(failure).toMatchObject({ retry: 'always', destroyClient: true });
    });

    it('inside a transaction, makes a client query timeout retryable', () => {
      const failure = classifyStatementFailure(new Error('Query read timeout'), 'statement', { inTransaction: true });

      expect(failure.error).toBeInstanceOf(QueryTimeoutError);
      expect(failure.error.ambiguous).toBe(false);
      expect(failure).toMatchObject({ retry: 'always', destroyClient: true });
    });

    it('retries a statement pg refused to send on a dead client', () => {
      const failure = classifyStatementFailure(new Error('Client has encountered a connection error and is not queryable'), 'statement');

      expect(failure.error).toBeInstanceOf(ConnectionLostError);
      expect(failure.error.ambiguous).toBe(false);
      expect(failure).toMatchObject({ retry: 'always', destroyClient: true });
    });
  });

  describe('a lost connection during COMMIT', () => {
    it('reports an unknown commit outcome and destroys the client', () => {
      const failure = classifyStatementFailure(new Error('Connection terminated unexpectedly'), 'commit');

      expect(failure.error).toBeInstanceOf(CommitOutcomeUnknownError);
      expect(failure.error).toMatchObject({ ambiguous: true, phase: 'commit' });
      expect(failure).toMatchObject({ retry: 'never', destroyClient: true });
    });

    it('stays ambiguous even when the caller says it is in a transaction', () => {
      const failure = classifyStatementFailure(new Error('Connection terminated unexpectedly'), 'commit', { inTransaction: true });

      expect(failure.error).toBeInstanceOf(CommitOutcomeUnknownError);
      expect(failure.error).toMatchObject({ ambiguous: true, retryable: false });
      expect(failure.retry).toBe('never');
    });
  });

  it('passes a DbError through, destroying the client after a lost connection', () => {
    const lost = new ConnectionLostError('lost', { ambiguous: true });

    const failure = classifyStatementFailure(lost, 'statement');

    expect(failure).toMatchObject({ error: lost, retry: 'idempotent', destroyClient: true });
  });
});

describe('isRetryable', () => {
  it.each([
    ['a serialization failure', serverError('40001'), true],
    ['a deadlock', serverError('40P01'), true],
    ['a unique violation', serverError('23505'), false],
    ['a syntax error', serverError('42601'), false],
    ['a refused connection', systemError('ECONNREFUSED'), true],
    ['a reset connection of unknown phase', systemError('ECONNRESET'), false],
    ['a lost connection', new Error('Connection terminated unexpectedly'), false],
    ['a retryable DbError', new ConnectionError('x', { retryable: true }), true],
    ['a DbError', new QueryError('x'), false],
  ])('answers for %s', (_, err, expected) => {
    expect(isRetryable(err)).toBe(expected);
  });
});

describe('isAmbiguous', () => {
  it.each([
    ['a lost connection', new Error('Connection terminated unexpectedly'), true],
    ['a client query timeout', new Error('Query read timeout'), true],
    ['a reset connection', systemError('ECONNRESET', 'read ECONNRESET'), true],
    ['a server ERROR', serverError('23505'), false],
    ['a dead client that sent nothing', new Error('Client has encountered a connection error and is not queryable'), false],
    ['an ambiguous DbError', new CommitOutcomeUnknownError('x'), true],
    ['a definitive DbError', new QueryError('x'), false],
  ])('answers for %s', (_, err, expected) => {
    expect(isAmbiguous(err)).toBe(expected);
  });

  it('never calls a refused connection ambiguous, since nothing was sent', () => {
    expect(isAmbiguous(systemError('ECONNREFUSED'))).toBe(false);
  });
});

describe('the error classes', () => {
  const classes = Object.entries(errors as Record<string, unknown>).filter(
    (entry): entry is [string, new (message: string) => DbError] => typeof entry[1] === 'function' && entry[1].prototype instanceof Error,
  );

  it('are all exported', () => {
    const names = classes.map(([name]) => name).sort();

    expect(names).toEqual([
      'AmbiguousResultError', 'AuthenticationError', 'CheckViolationError', 'CommitOutcomeUnknownError', 'ConfigurationError', 'ConnectionError',
      'ConnectionLostError', 'ConstraintViolationError', 'CredentialsError', 'DbError', 'DeadlineExceededError', 'DeadlockError',
      'ExclusionViolationError', 'ForeignKeyViolationError', 'InvalidParameterError', 'LockNotAvailableError', 'NotNullViolationError',
      'PoolExhaustedError', 'QueryError', 'QueryTimeoutError', 'ReadOnlyConnectionError', 'SerializationFailureError', 'StatementTimeoutError',
      'TlsError', 'TooManyConnectionsError', 'TransactionAbortedError', 'UniqueViolationError',
    ]);
  });

  it.each(classes)('%s sets an explicit name equal to its class name and extends DbError', (name, cls) => {
    const error = new cls('message');

    expect(error.name).toBe(name);
    expect(cls.name).toBe(name);
    expect(error).toBeInstanceOf(DbError);
    expect(error).toBeInstanceOf(Error);
  });

  it.each(['UniqueViolationError', 'ForeignKeyViolationError', 'NotNullViolationError', 'CheckViolationError', 'ExclusionViolationError'] as const)(
    '%s is a ConstraintViolationError',
    (name) => {
      expect(new errors[name]('message')).toBeInstanceOf(ConstraintViolationError);
    },
  );

  it('gives each class a distinct, stable code', () => {
    const codes = classes.map(([, cls]) => new cls('message').code);

    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^DB_[A-Z_]+$/);
  });

  it('passes the cause on', () => {
    const cause = new Error('socket');

    const error = new ConnectionLostError('lost', { cause });

    expect(error.cause).toBe(cause);
  });
});

describe('values in server errors', () => {
  it('keeps only what precedes the quoted input of a data exception, and drops the raw error that quotes it', () => {
    const raw = serverError('22P02', 'ERROR', 'invalid input syntax for type integer: "12"; DROP secret-token"', { detail: 'Token "secret-token" is invalid.' });

    const { error } = classifyStatementFailure(raw, 'statement');

    expect(error.message).toBe('invalid input syntax for type integer (SQLSTATE 22P02)');
    expect(error.cause).toBeUndefined();
    expect((error as errors.QueryError).detail).toBeUndefined();
    expect(inspect(error, { depth: 5, showHidden: true })).not.toContain('secret-token');
  });

  it('keeps a constraint error\'s cause but hides the detail that quotes the row', () => {
    const raw = serverError('23505', 'ERROR', 'duplicate key value violates unique constraint "users_email_key"', {
      detail: 'Key (email)=(alice@example.com) already exists.', constraint: 'users_email_key',
    });

    const { error } = classifyStatementFailure(raw, 'statement');

    expect(error.cause).toBe(raw);
    expect((error as errors.QueryError).detail).toBe('Key (email)=(alice@example.com) already exists.');
    expect(inspect(error, { depth: 5 }) + JSON.stringify(error)).not.toContain('alice@example.com');
  });
});
