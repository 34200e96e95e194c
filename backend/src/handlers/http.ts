// JSON responses and the error boundary every example handler runs inside: HttpError becomes its status, a
// database that is busy or out of time becomes 503, anything else a generic 500 with the request id, logged as one
// JSON line that names the error's class, code and SQLSTATE but never its SQL, parameters or row values.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { ConnectionError, DbError, DeadlineExceededError, LockNotAvailableError, QueryError, QueryTimeoutError, StatementTimeoutError } from '../shared/db';

/** The HTTP API (v2) event the handlers take. */
export type HttpEvent = APIGatewayProxyEventV2;
/** The structured HTTP API (v2) result the handlers return. */
export type HttpResult = APIGatewayProxyStructuredResultV2;
/** A handler's logic before createHandler wraps it. */
export type HttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** An error meant for the client: its status, a stable code and a one-sentence message. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
  }
}

/** A 400 for input that fails validation; its message names the field. */
export function badRequest(message: string): HttpError {
  return new HttpError(400, 'BAD_REQUEST', message);
}

/** A 404 naming what was not found. */
export function notFound(message: string): HttpError {
  return new HttpError(404, 'NOT_FOUND', message);
}

/** A JSON response with `body` serialized by JSON.stringify. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

/** The response for a client error: `{ error: { code, message } }`. */
export function errorResponse(error: HttpError): HttpResult {
  return json(error.statusCode, { error: { code: error.code, message: error.message } });
}

/**
 * True for failures a client should simply retry later: the database was busy, unreachable or out of time (a
 * statement or lock timeout too: the request was fine, the database could not serve it in time).
 */
export function isUnavailable(err: unknown): boolean {
  return err instanceof DbError && (
    err.retryable || err instanceof DeadlineExceededError || err instanceof StatementTimeoutError || err instanceof LockNotAvailableError ||
    err instanceof QueryTimeoutError || (err instanceof ConnectionError && err.code !== 'DB_TLS'));
}

/** Fields safe to log for any error: class, codes, constraint; never a server message (it can quote values). */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof DbError) {
    const { table, constraint } = err as { table?: string; constraint?: string };
    return {
      error: err.name, code: err.code, sqlState: err.sqlState, phase: err.phase, attempts: err.attempts,
      ambiguous: err.ambiguous, table, constraint,
      // The module's own messages never carry values; a server's may ("invalid input syntax for type uuid: ...").
      message: err instanceof QueryError ? undefined : err.message,
    };
  }
  if (err instanceof Error) return { error: err.name, message: err.message };
  return { error: typeof err };
}

/** Writes one structured log line to the console; fields must not hold parameter values. */
export function logJson(level: 'INFO' | 'WARN' | 'ERROR', message: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, time: new Date().toISOString(), message, ...fields });
  (level === 'ERROR' ? console.error : level === 'WARN' ? console.warn : console.log)(line);
}

/** Wraps handler logic in the error boundary: client errors pass through, everything else is logged and hidden. */
export function createHandler(name: string, fn: HttpHandler): HttpHandler {
  return async (event, context) => {
    const requestId = context.awsRequestId;
    try {
      return await fn(event, context);
    } catch (err) {
      if (err instanceof HttpError) return errorResponse(err);
      const route = event.routeKey;
      if (isUnavailable(err)) {
        logJson('WARN', 'Request failed: the database is unavailable.', { handler: name, route, requestId, ...describeError(err) });
        const body = { error: { code: 'UNAVAILABLE', message: 'The service is temporarily unavailable; retry shortly.', requestId } };
        return json(503, body, { 'retry-after': '1', 'x-request-id': requestId });
      }
      logJson('ERROR', 'Request failed with an unexpected error.', { handler: name, route, requestId, ...describeError(err) });
      const body = { error: { code: 'INTERNAL', message: 'An internal error occurred.', requestId } };
      return json(500, body, { 'x-request-id': requestId });
    }
  };
}
