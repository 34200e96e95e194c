// The handlers' error boundary: client errors keep their status, a busy, slow or unreachable database is 503, anything
// else is a generic 500 with the request id; the log line is JSON and carries no server message, SQL or values.
// No database: errors are constructed directly.
import {
  ConnectionError, DeadlineExceededError, LockNotAvailableError, QueryTimeoutError, SerializationFailureError, StatementTimeoutError, TlsError, UniqueViolationError,
} from '../../../src/shared/db';
import { createHandler, HttpError, json } from '../../../src/handlers/http';
import { createHttpEvent } from '../../../../scripts/lib/http-event';
import { createLambdaContext } from '../../../../scripts/lib/lambda-context';

const event = createHttpEvent({ method: 'GET', path: '/health' });
const failWith = (err: unknown) => createHandler('test', async () => {
  throw err;
});
const bodyOf = (result: { body?: string }) => JSON.parse(result.body ?? 'null');

let errorLines: string[];
let warnLines: string[];
beforeEach(() => {
  errorLines = [];
  warnLines = [];
  jest.spyOn(console, 'error').mockImplementation((line: string) => void errorLines.push(line));
  jest.spyOn(console, 'warn').mockImplementation((line: string) => void warnLines.push(line));
});
afterEach(() => jest.restoreAllMocks());

describe('json', () => {
  it('serializes the body and sets a JSON content type', () => {
    const result = json(201, { a: 1 }, { location: '/x' });

    expect(result).toEqual({ statusCode: 201, headers: { 'content-type': 'application/json; charset=utf-8', location: '/x' }, body: '{"a":1}' });
  });
});

describe('createHandler', () => {
  it('passes a successful result through', async () => {
    const handler = createHandler('test', async () => json(200, { ok: true }));

    expect(await handler(event, createLambdaContext())).toEqual(json(200, { ok: true }));
  });

  it('answers an HttpError with its status, code and message, and logs nothing', async () => {
    const result = await failWith(new HttpError(409, 'EMAIL_TAKEN', 'Taken.'))(event, createLambdaContext());

    expect(result.statusCode).toBe(409);
    expect(bodyOf(result)).toEqual({ error: { code: 'EMAIL_TAKEN', message: 'Taken.' } });
    expect(errorLines).toEqual([]);
  });

  it('answers an unexpected error with a generic 500 naming the request id', async () => {
    const context = createLambdaContext();

    const result = await failWith(new TypeError('Cannot read properties of undefined'))(event, context);

    expect(result.statusCode).toBe(500);
    expect(result.headers?.['x-request-id']).toBe(context.awsRequestId);
    expect(bodyOf(result)).toEqual({ error: { code: 'INTERNAL', message: 'An internal error occurred.', requestId: context.awsRequestId } });
    expect(JSON.parse(errorLines[0])).toMatchObject({ level: 'ERROR', handler: 'test', requestId: context.awsRequestId, error: 'TypeError' });
  });

  it('never returns or logs a server error message, which can quote values', async () => {
    const serverError = new UniqueViolationError('duplicate key value violates unique constraint "users_tenant_email_key" secret@example.com',
      { detail: 'Key (email)=(secret@example.com) already exists.', constraint: 'users_tenant_email_key', table: 'users' },
      { sqlState: '23505' });

    const result = await failWith(serverError)(event, createLambdaContext());

    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/secret|duplicate|users/);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).not.toContain('secret');
    expect(JSON.parse(errorLines[0])).toMatchObject({ error: 'UniqueViolationError', code: 'DB_UNIQUE_VIOLATION', sqlState: '23505', constraint: 'users_tenant_email_key', table: 'users' });
  });

  it.each([
    ['a serialization failure after the retries', new SerializationFailureError('could not serialize access', {}, { sqlState: '40001', retryable: true })],
    ['a deadline', new DeadlineExceededError('Gave up after 3 attempt(s).')],
    ['a connection failure', new ConnectionError('Connecting to the database failed.')],
    ['a server statement timeout', new StatementTimeoutError('canceling statement due to statement timeout', {}, { sqlState: '57014' })],
    ['a lock timeout', new LockNotAvailableError('canceling statement due to lock timeout', {}, { sqlState: '55P03' })],
    ['a client timeout', new QueryTimeoutError('The query timed out on the client; it may still run on the server.', { ambiguous: true })],
  ])('answers %s with 503 and Retry-After', async (_name, err) => {
    const result = await failWith(err)(event, createLambdaContext());

    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(bodyOf(result).error.code).toBe('UNAVAILABLE');
    expect(JSON.parse(warnLines[0])).toMatchObject({ level: 'WARN', error: err.name });
  });

  it('answers a TLS verification failure with 500: retrying will not fix a configuration error', async () => {
    const result = await failWith(new TlsError('TLS verification of the database server failed.'))(event, createLambdaContext());

    expect(result.statusCode).toBe(500);
  });
});
