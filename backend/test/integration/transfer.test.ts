// The transfer handler against a real PostgreSQL: money moves once per requestId, never below zero, and the sum of
// balances holds under 20 concurrent transfers, which queue on the wallets' row locks: contention alone makes no 503.
import crypto from 'node:crypto';
import { closePool } from '../../src/shared/db';
import { handler as transfer } from '../../src/handlers/transfer';
import { call, createAppDatabase, snapshot, type AppDatabase } from './fixtures/app-database';

const TENANT = 'b0000000-0000-4000-8000-000000000001';
const OTHER_TENANT = 'b0000000-0000-4000-8000-000000000002';
const [A, B, C, D, FOREIGN] = ['a1', 'b2', 'c3', 'd4', 'e5'].map((s) => `b0000000-0000-4000-8000-0000000000${s}`);
const path = `/tenants/${TENANT}/transfers`;

let app: AppDatabase;
const savedEnv = { ...process.env };

const post = (body: unknown) => call(transfer, { method: 'POST', path, body });
const body = (fromWalletId: string, toWalletId: string, amountCents: number, requestId: string = crypto.randomUUID()) => ({ requestId, fromWalletId, toWalletId, amountCents });
const balance = async (id: string) => Number((await app.admin.query('SELECT balance_cents FROM wallets WHERE id = $1', [id])).rows[0].balance_cents);

beforeAll(async () => {
  app = await createAppDatabase('transfers');
  // Concurrency must reach the database: a pool of 2 would queue the parallel requests instead of racing them.
  Object.assign(process.env, app.env, { DB_POOL_MAX: '20' });
  await app.admin.query(`INSERT INTO tenants (id, name) VALUES ($1, 'Bank'), ($2, 'Other')`, [TENANT, OTHER_TENANT]);
  await app.admin.query(`INSERT INTO wallets (id, tenant_id, name, balance_cents) VALUES
    ($1, $6, 'A', 10000), ($2, $6, 'B', 0), ($3, $6, 'C', 1000), ($4, $6, 'D', 0), ($5, $7, 'Foreign', 5000)`, [A, B, C, D, FOREIGN, TENANT, OTHER_TENANT]);
});

afterAll(async () => {
  await closePool();
  process.env = savedEnv;
  await app?.drop();
});

describe('transfer', () => {
  it('moves the amount, writes one ledger row and answers 201', async () => {
    const request = body(A, B, 2500);

    const response = await post(request);

    expect(response.status).toBe(201);
    expect(response.body.transfer).toEqual({ id: expect.any(String), ...request, createdAt: expect.any(String) });
    expect([await balance(A), await balance(B)]).toEqual([7500, 2500]);
    expect((await app.admin.query('SELECT 1 FROM transfers WHERE request_id = $1', [request.requestId])).rowCount).toBe(1);
  });

  it('answers a retried requestId with 200 and the same transfer, moving nothing', async () => {
    const request = body(A, B, 100);
    const first = await post(request);
    const before = await snapshot(app.admin);

    const retry = await post(request);

    expect(retry.status).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it('answers 422 when a requestId is reused for a different transfer, moving nothing', async () => {
    const request = body(A, B, 100);
    await post(request);
    const before = await snapshot(app.admin);

    const reused = await post({ ...request, amountCents: 999 });

    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('REQUEST_ID_REUSED');
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it('answers 409 when the source wallet lacks the funds, moving nothing', async () => {
    const before = await snapshot(app.admin);

    const response = await post(body(C, D, 1001));

    expect(response.status).toBe(409);
    expect(response.body.error).toEqual({ code: 'INSUFFICIENT_FUNDS', message: 'The source wallet does not hold enough funds for this transfer.' });
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it.each([
    ['an unknown source wallet', () => post(body('ffffffff-ffff-4fff-8fff-ffffffffffff', B, 1)), /`fromWalletId`/],
    ['a destination wallet of another tenant', () => post(body(A, FOREIGN, 1)), /`toWalletId`/],
    ['an unknown tenant', () => call(transfer, { method: 'POST', path: `/tenants/${OTHER_TENANT.replace('2', '9')}/transfers`, body: body(A, B, 1) }), /`fromWalletId`/],
  ])('answers 404 for %s, moving nothing', async (_name, send, message) => {
    const before = await snapshot(app.admin);

    const response = await send();

    expect(response.status).toBe(404);
    expect(response.body.error.message).toMatch(message);
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it.each([
    ['malformed JSON', '{"requestId": '],
    ['a string amount', { ...body(A, B, 1), amountCents: '1' }],
    ['a zero amount', body(A, B, 0)],
    ['a bad requestId', { ...body(A, B, 1), requestId: 'retry-1' }],
    ['the same wallet twice', body(A, A, 1)],
  ])('answers 400 for %s, moving nothing', async (_name, request) => {
    const before = await snapshot(app.admin);

    const response = await post(request);

    expect(response.status).toBe(400);
    expect(await snapshot(app.admin)).toEqual(before);
  });
});

describe('transfer under concurrency', () => {
  // Conflicts are expected here: the module and the handler log each one it gives up on as a warning.
  beforeEach(() => jest.spyOn(console, 'warn').mockImplementation(() => undefined));
  afterEach(() => jest.restoreAllMocks());

  it('keeps the sum of balances through 20 parallel transfers in both directions', async () => {
    const [a, b] = [await balance(A), await balance(B)];
    const requests = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? body(A, B, 300 + i) : body(B, A, 100 + i)));
    const expectedA = a - requests.reduce((sum, r) => sum + (r.fromWalletId === A ? r.amountCents : -r.amountCents), 0);

    const responses = await Promise.all(requests.map(post));

    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect([await balance(A), await balance(B)]).toEqual([expectedA, a + b - expectedA]);
    const ledger = await app.admin.query('SELECT count(*)::int AS n FROM transfers WHERE request_id = ANY($1::uuid[])', [requests.map((r) => r.requestId)]);
    expect(ledger.rows[0].n).toBe(20);
  });

  it('never overdraws: 20 parallel transfers of 100 from a wallet holding 1000 make exactly 10 succeed', async () => {
    await app.admin.query('UPDATE wallets SET balance_cents = 1000 WHERE id = $1', [C]);
    await app.admin.query('UPDATE wallets SET balance_cents = 0 WHERE id = $1', [D]);

    const responses = await Promise.all(Array.from({ length: 20 }, () => post(body(C, D, 100))));

    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(10).fill(201), ...Array(10).fill(409)]);
    expect([await balance(C), await balance(D)]).toEqual([0, 1000]);
  });

  it('moves money once when the same requestId arrives 5 times at once', async () => {
    const request = body(A, B, 700);
    const [a, b] = [await balance(A), await balance(B)];

    const responses = await Promise.all(Array.from({ length: 5 }, () => post(request)));

    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(responses.map((r) => r.body.transfer.id)).size).toBe(1);
    expect([await balance(A), await balance(B)]).toEqual([a - 700, b + 700]);
  });
});
