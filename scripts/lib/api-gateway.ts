// A local stand-in for an API Gateway HTTP API (payload format 2.0) in front of the example handlers: routes a
// node:http request by method and path (backend/src/handlers/routes.ts), turns it into a v2 event with a fake Lambda
// context, and writes the handler's result back, including API Gateway's own 404, 413 and 500 answers.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import path from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HttpHandler } from '../../backend/src/handlers/http';
import { HANDLER_NAMES, matchRoute } from '../../backend/src/handlers/routes';
import { createHttpEvent } from './http-event';
import { createLambdaContext } from './lambda-context';

/** Handler functions by handler name (the `handler` column of ROUTES). */
export type HandlerTable = Readonly<Record<string, HttpHandler>>;

/** One answered request, for the access log. */
export interface RequestLog {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly durationMillis: number;
}

/** Options for {@link createApiGatewayListener}. */
export interface ApiGatewayOptions {
  readonly handlers: HandlerTable;
  /** The fake function timeout each invocation's context counts down from. (Default: 30000, API Gateway's limit) */
  readonly timeoutMillis?: number;
  /** Called once per answered request. (Default: none) */
  readonly onRequest?: (entry: RequestLog) => void;
  /** Called with an error a handler threw (API Gateway then answers 500). (Default: console.error) */
  readonly onHandlerError?: (handler: string, error: unknown) => void;
}

/** Lambda's synchronous invocation payload limit; API Gateway answers 413 above it. */
export const MAX_REQUEST_BYTES = 6 * 1024 * 1024;
const HANDLERS_DIR = path.resolve(__dirname, '../../backend/src/handlers');

/** Loads `handler` from backend/src/handlers/<name>.ts for every handler of ROUTES. */
export function loadHandlers(): HandlerTable {
  return Object.fromEntries(
    HANDLER_NAMES.map((name) => {
      const loaded = require(path.join(HANDLERS_DIR, name)) as { handler?: HttpHandler };
      if (typeof loaded.handler !== 'function') throw new Error(`backend/src/handlers/${name}.ts exports no handler function.`);
      return [name, loaded.handler];
    }),
  );
}

/** A node:http request listener that serves `options.handlers` the way API Gateway would invoke them. */
export function createApiGatewayListener(options: ApiGatewayOptions): RequestListener {
  const onHandlerError = options.onHandlerError ?? ((name, error) => console.error(`${name} threw:`, error));
  return (request, response) => {
    const startedAt = process.hrtime.bigint();
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    response.on('finish', () => {
      const durationMillis = Number(process.hrtime.bigint() - startedAt) / 1e6;
      options.onRequest?.({ method, path: url, status: response.statusCode, durationMillis });
    });
    serve(request, response, method, url, options, onHandlerError).catch(() => response.destroy()); // e.g. an aborted upload
  };
}

async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  method: string,
  url: string,
  options: ApiGatewayOptions,
  onHandlerError: (handler: string, error: unknown) => void,
): Promise<void> {
  const body = await readBody(request);
  if (body === undefined) return writeMessage(response, 413, 'Request Entity Too Large');
  let match: ReturnType<typeof matchRoute>;
  try {
    match = matchRoute(method, url.split('?', 1)[0]);
  } catch {
    return writeMessage(response, 400, 'Bad Request'); // a malformed %-escape in a path parameter
  }
  const handler = match && options.handlers[match.route.handler];
  if (!match || !handler) return writeMessage(response, 404, 'Not Found');

  const event = toHttpEvent(request, method, url, body);
  const context = createLambdaContext({ functionName: match.route.handler, timeoutMillis: options.timeoutMillis ?? 30_000 });
  let result: unknown;
  try {
    result = await handler(event, context);
  } catch (error) {
    onHandlerError(match.route.handler, error);
    return writeMessage(response, 500, 'Internal Server Error');
  }
  writeResult(response, result);
}

/** The v2 event for a request: headers joined as API Gateway joins them, cookies split out, a non-UTF-8 body in base64. */
export function toHttpEvent(request: IncomingMessage, method: string, url: string, body: Buffer): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && name !== 'cookie') headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const text = decodeUtf8(body);
  const event = createHttpEvent({ method, path: url, headers, body: body.length === 0 ? undefined : text ?? body.toString('base64') });
  // createHttpEvent assumes JSON; a request that sent no content-type must not seem to have one.
  if (request.headers['content-type'] === undefined) delete event.headers['content-type'];
  const cookies = request.headers.cookie?.split(/;\s*/).filter(Boolean);
  return {
    ...event,
    cookies: cookies?.length ? cookies : undefined,
    isBase64Encoded: body.length > 0 && text === undefined,
    requestContext: { ...event.requestContext, http: { ...event.requestContext.http, sourceIp: request.socket.remoteAddress ?? '127.0.0.1' } },
  };
}

/** Writes a handler's result: a structured result as is, anything else as a 200 JSON body (payload 2.0 inference). */
export function writeResult(response: ServerResponse, result: unknown): void {
  const structured = typeof result === 'object' && result !== null && 'statusCode' in result;
  const { statusCode = 200, headers = {}, cookies = [], body, isBase64Encoded } = structured
    ? (result as APIGatewayProxyStructuredResultV2)
    : { headers: { 'content-type': 'application/json' }, body: result === undefined ? undefined : JSON.stringify(result) };
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body, isBase64Encoded ? 'base64' : 'utf8');
  response.statusCode = statusCode;
  for (const [name, value] of Object.entries(headers)) response.setHeader(name, String(value));
  if (cookies.length) response.setHeader('set-cookie', cookies);
  response.setHeader('content-length', payload.length);
  response.end(payload);
}

/** API Gateway's own answers carry `{"message": …}`. */
function writeMessage(response: ServerResponse, status: number, message: string): void {
  writeResult(response, { statusCode: status, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
}

/** The request body, or undefined once it exceeds MAX_REQUEST_BYTES (the rest is drained, not buffered). */
async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
  }
  return size > MAX_REQUEST_BYTES ? undefined : Buffer.concat(chunks);
}

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
