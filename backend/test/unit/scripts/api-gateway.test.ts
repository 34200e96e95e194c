// The local API Gateway shim with stand-in handlers on a loopback port (no database): v2 events built from real
// requests (route, path parameters, query string, headers, cookies, body), results written back, and API Gateway's
// own 400, 404 and 500 answers. The integration test drives it with the real handlers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpEvent, HttpHandler, HttpResult } from '../../../src/handlers/http';
import { createApiGatewayListener, loadHandlers, type RequestLog } from '../../../../scripts/lib/api-gateway';
import { HANDLER_NAMES } from '../../../src/handlers/routes';

let server: http.Server;
let baseUrl: string;
let events: HttpEvent[];
let answer: (event: HttpEvent) => Promise<unknown>;
let logs: RequestLog[];
let handlerErrors: unknown[];

const record: HttpHandler = async (event) => {
  events.push(event);
  return (await answer(event)) as HttpResult;
};

beforeAll(async () => {
  const handlers = Object.fromEntries(HANDLER_NAMES.map((name) => [name, record]));
  const listener = createApiGatewayListener({ handlers, onRequest: (entry) => logs.push(entry), onHandlerError: (_name, error) => handlerErrors.push(error) });
  server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  events = [];
  logs = [];
  handlerErrors = [];
  answer = async () => ({ statusCode: 204 });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('createApiGatewayListener', () => {
  it('turns a request into the v2 event of its route, with path parameters, query, headers, cookies and body', async () => {
    await fetch(`${baseUrl}/tenants/t%201/users/u-2?limit=5&tag=a&tag=b`, {
      method: 'GET',
      headers: { 'x-trace': 'abc', cookie: 'a=1; b=2' },
    });

    expect(events).toHaveLength(1);
    const event = events[0];
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /tenants/{tenantId}/users/{userId}',
      rawPath: '/tenants/t%201/users/u-2',
      rawQueryString: 'limit=5&tag=a&tag=b',
      pathParameters: { tenantId: 't 1', userId: 'u-2' },
      queryStringParameters: { limit: '5', tag: 'a,b' },
      cookies: ['a=1', 'b=2'],
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET', path: '/tenants/t%201/users/u-2', sourceIp: '127.0.0.1' } },
    });
    expect(event.headers).toMatchObject({ 'x-trace': 'abc' });
    expect(event.headers).not.toHaveProperty('cookie');
    expect(event.headers).not.toHaveProperty('content-type');
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('passes a UTF-8 body as text and any other body in base64', async () => {
    await fetch(`${baseUrl}/tenants/t/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"Zoë"}' });
    await fetch(`${baseUrl}/tenants/t/users`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0xff, 0xfe, 0x00]) });

    expect(events.map((event) => [event.body, event.isBase64Encoded])).toEqual([['{"name":"Zoë"}', false], ['//4A', true]]);
  });

  it("writes the result's status, headers, cookies and base64 body", async () => {
    answer = async () => ({ statusCode: 201, headers: { 'x-id': '7' }, cookies: ['s=1; HttpOnly'], body: Buffer.from('hé').toString('base64'), isBase64Encoded: true });

    const response = await fetch(`${baseUrl}/tenants/t/transfers`, { method: 'POST', body: '{}' });

    expect(response.status).toBe(201);
    expect(response.headers.get('x-id')).toBe('7');
    expect(response.headers.get('set-cookie')).toBe('s=1; HttpOnly');
    expect(await response.text()).toBe('hé');
  });

  it('answers a result without statusCode with 200 and its JSON, as payload format 2.0 infers', async () => {
    answer = async () => ({ ok: true });

    const response = await fetch(`${baseUrl}/health`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ ok: true });
  });

  it("answers an unknown route or method with API Gateway's 404 without invoking anything", async () => {
    const unknownPath = await fetch(`${baseUrl}/nowhere`);
    const wrongMethod = await fetch(`${baseUrl}/health`, { method: 'DELETE' });

    expect([unknownPath.status, wrongMethod.status]).toEqual([404, 404]);
    expect(await unknownPath.json()).toEqual({ message: 'Not Found' });
    expect(events).toHaveLength(0);
  });

  it('answers a malformed percent-escape in a path parameter with 400', async () => {
    const response = await fetch(`${baseUrl}/tenants/%E0%A4%A/users`);

    expect(response.status).toBe(400);
    expect(events).toHaveLength(0);
  });

  it('answers 500 when the handler throws, and reports the error', async () => {
    const failure = new Error('boom');
    answer = async () => {
      throw failure;
    };

    const response = await fetch(`${baseUrl}/health`);

    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ message: 'Internal Server Error' });
    expect(handlerErrors).toEqual([failure]);
  });

  it("logs each request's method, path with query, status and duration", async () => {
    await fetch(`${baseUrl}/health?verbose=1`);
    await fetch(`${baseUrl}/nowhere`);

    expect(logs).toEqual([
      { method: 'GET', path: '/health?verbose=1', status: 204, durationMillis: expect.any(Number) },
      { method: 'GET', path: '/nowhere', status: 404, durationMillis: expect.any(Number) },
    ]);
  });
});

describe('loadHandlers', () => {
  it('loads a handler function for every route of the table', () => {
    const handlers = loadHandlers();

    expect(Object.keys(handlers).sort()).toEqual([...HANDLER_NAMES].sort());
    for (const handler of Object.values(handlers)) expect(typeof handler).toBe('function');
  });
});
