// Builds API Gateway HTTP API (payload format 2.0) events the way API Gateway does: routeKey, rawPath, decoded
// pathParameters, comma-joined query parameters and a requestContext, so handlers see in tests, `npm run invoke`
// and the local server what they will see in AWS.
import crypto from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { matchRoute } from '../../backend/src/handlers/routes';

/** What a request consists of; everything else is filled in. */
export interface HttpEventOptions {
  readonly method: string;
  /** The concrete path, e.g. /tenants/…/users; its query string, if any, is split off. */
  readonly path: string;
  /** A JSON value (serialized), a raw string (sent as is) or undefined for no body. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** The route key; by default the route of ROUTES that matches, else `$default`. */
  readonly routeKey?: string;
  /** By default the parameters the matching route binds. */
  readonly pathParameters?: Record<string, string>;
}

/** A v2 event for one request, with the body as a string (JSON.stringify'd unless it already is one). */
export function createHttpEvent(options: HttpEventOptions): APIGatewayProxyEventV2 {
  // Everything after the first "?" is the query string, further "?" included, as API Gateway keeps it.
  const queryAt = options.path.indexOf('?');
  const rawPath = queryAt < 0 ? options.path : options.path.slice(0, queryAt);
  const rawQueryString = queryAt < 0 ? '' : options.path.slice(queryAt + 1);
  const method = options.method.toUpperCase();
  const match = matchRoute(method, rawPath);
  const query = new URLSearchParams(rawQueryString);
  const queryStringParameters: Record<string, string> = {};
  for (const key of new Set(query.keys())) queryStringParameters[key] = query.getAll(key).join(',');
  const headers: Record<string, string> = { 'content-type': 'application/json', ...lowerKeys(options.headers ?? {}) };
  const now = new Date();
  return {
    version: '2.0',
    routeKey: options.routeKey ?? (match ? `${method} ${match.route.path}` : '$default'),
    rawPath,
    rawQueryString,
    headers,
    queryStringParameters: rawQueryString ? queryStringParameters : undefined,
    pathParameters: options.pathParameters ?? (match && Object.keys(match.pathParameters).length ? match.pathParameters : undefined),
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: headers['user-agent'] ?? 'lambda-pg' },
      requestId: crypto.randomUUID(),
      routeKey: options.routeKey ?? (match ? `${method} ${match.route.path}` : '$default'),
      stage: '$default',
      time: apiGatewayTime(now),
      timeEpoch: now.getTime(),
    },
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    isBase64Encoded: false,
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** API Gateway's request time format: 12/Mar/2020:19:03:58 +0000. */
function apiGatewayTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]));
}
