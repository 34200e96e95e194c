// The user handlers and health against a real, migrated PostgreSQL over verified TLS, driven with API Gateway v2
// events: status codes and bodies, the user and its audit row in one transaction, and bad input that writes nothing.
// The facade's default instance is configured by DATABASE_URL and DB_SSL_CA_FILE, as in a deployed function.
import { closePool } from '../../src/shared/db';
import { handler as createUser } from '../../src/handlers/create-user';
import { handler as getUser } from '../../src/handlers/get-user';
import { handler as health } from '../../src/handlers/health';
import { handler as listUsers } from '../../src/handlers/list-users';
import { call, createAppDatabase, snapshot, type AppDatabase } from './fixtures/app-database';

const TENANT = 'a0000000-0000-4000-8000-000000000001';
const OTHER_TENANT = 'a0000000-0000-4000-8000-000000000002';
const EMPTY_TENANT = 'a0000000-0000-4000-8000-000000000003';
const UNKNOWN = 'ffffffff-ffff-4fff-8fff-ffffffffffff';
const users = `/tenants/${TENANT}/users`;

let app: AppDatabase;
const savedEnv = { ...process.env };

beforeAll(async () => {
  app = await createAppDatabase('handlers');
  Object.assign(process.env, app.env);
  await app.admin.query(`INSERT INTO tenants (id, name) VALUES ($1, 'Acme'), ($2, 'Other'), ($3, 'Empty')`, [TENANT, OTHER_TENANT, EMPTY_TENANT]);
});

afterAll(async () => {
  await closePool();
  process.env = savedEnv;
  await app?.drop();
});

describe('health', () => {
  it('answers 200 after a round trip to the database', async () => {
    const response = await call(health, { method: 'GET', path: '/health' });

    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok', database: { ok: true, latencyMillis: expect.any(Number) } });
  });
});

describe('create-user', () => {
  it('creates the user and its audit row, and answers 201 with a Location', async () => {
    const response = await call(createUser, { method: 'POST', path: users, body: { email: 'Ada@Example.com', name: ' Ada Lovelace ' } });

    expect(response.status).toBe(201);
    const user = response.body.user;
    expect(user).toEqual({ id: expect.any(String), tenantId: TENANT, email: 'ada@example.com', name: 'Ada Lovelace', createdAt: expect.any(String) });
    expect(response.headers.location).toBe(`${users}/${user.id}`);
    const audit = await app.admin.query('SELECT action, entity_type, entity_id, request_id FROM audit_log WHERE entity_id = $1', [user.id]);
    expect(audit.rows).toEqual([{ action: 'user.created', entity_type: 'user', entity_id: user.id, request_id: response.requestId }]);
  });

  it('answers 409 for an email the tenant already has, in any case, and writes nothing', async () => {
    await call(createUser, { method: 'POST', path: users, body: { email: 'grace@example.com', name: 'Grace' } });
    const before = await snapshot(app.admin);

    const response = await call(createUser, { method: 'POST', path: users, body: { email: 'GRACE@example.com', name: 'Grace again' } });

    expect(response.status).toBe(409);
    expect(response.body.error).toEqual({ code: 'EMAIL_TAKEN', message: 'A user with this email already exists in this tenant.' });
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it('answers 400, not 500, for a NUL character, which PostgreSQL cannot store, and writes nothing', async () => {
    const before = await snapshot(app.admin);

    const response = await call(createUser, { method: 'POST', path: users, body: { email: 'nul@example.com', name: 'a\u0000b' } });

    expect(response.status).toBe(400);
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it('lets another tenant use the same email', async () => {
    const body = { email: 'margaret@example.com', name: 'Margaret' };
    const first = await call(createUser, { method: 'POST', path: users, body });

    const second = await call(createUser, { method: 'POST', path: `/tenants/${OTHER_TENANT}/users`, body });

    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.user).toMatchObject({ tenantId: OTHER_TENANT, email: 'margaret@example.com' });
  });

  it('answers 404 for an unknown tenant and writes nothing', async () => {
    const before = await snapshot(app.admin);

    const response = await call(createUser, { method: 'POST', path: `/tenants/${UNKNOWN}/users`, body: { email: 'x@example.com', name: 'X' } });

    expect(response.status).toBe(404);
    expect(response.body.error).toEqual({ code: 'NOT_FOUND', message: 'Tenant not found.' });
    expect(await snapshot(app.admin)).toEqual(before);
  });

  describe('with a requestId', () => {
    const usersWithKey = async (requestId: string) =>
      (await app.admin.query('SELECT u.id, count(a.id)::int AS audits FROM users u LEFT JOIN audit_log a ON a.entity_id = u.id WHERE u.request_id = $1 GROUP BY u.id', [requestId])).rows;

    it('answers a retry with the user the first request made (200), and writes nothing more', async () => {
      const requestId = 'b0000000-0000-4000-8000-000000000001';
      const first = await call(createUser, { method: 'POST', path: users, body: { email: 'hedy@example.com', name: 'Hedy', requestId } });
      const before = await snapshot(app.admin);

      const retry = await call(createUser, { method: 'POST', path: users, body: { email: 'Hedy@Example.com', name: ' Hedy ', requestId: requestId.toUpperCase() } });

      expect(first.status).toBe(201);
      expect(retry.status).toBe(200);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.user).toEqual(first.body.user);
      expect(retry.headers.location).toBe(first.headers.location);
      expect(await snapshot(app.admin)).toEqual(before);
      expect(await usersWithKey(requestId)).toEqual([{ id: first.body.user.id, audits: 1 }]);
    });

    it('creates one user for two concurrent requests with the same requestId, and answers both with it', async () => {
      const requestId = 'b0000000-0000-4000-8000-000000000002';
      const body = { email: 'katherine@example.com', name: 'Katherine', requestId };

      const responses = await Promise.all([call(createUser, { method: 'POST', path: users, body }), call(createUser, { method: 'POST', path: users, body })]);

      expect(responses.map((r) => r.status).sort()).toEqual([200, 201]);
      expect(responses[0].body.user).toEqual(responses[1].body.user);
      expect(await usersWithKey(requestId)).toEqual([{ id: responses[0].body.user.id, audits: 1 }]);
    });

    it('answers 422 when the requestId was used for a different user, and writes nothing', async () => {
      const requestId = 'b0000000-0000-4000-8000-000000000003';
      await call(createUser, { method: 'POST', path: users, body: { email: 'barbara@example.com', name: 'Barbara', requestId } });
      const before = await snapshot(app.admin);

      const response = await call(createUser, { method: 'POST', path: users, body: { email: 'radia@example.com', name: 'Radia', requestId } });

      expect(response.status).toBe(422);
      expect(response.body.error).toEqual({ code: 'REQUEST_ID_REUSED', message: 'This `requestId` was already used to create a different user.' });
      expect(await snapshot(app.admin)).toEqual(before);
    });

    it('still answers 409 for an email that another request took', async () => {
      await call(createUser, { method: 'POST', path: users, body: { email: 'frances@example.com', name: 'Frances', requestId: 'b0000000-0000-4000-8000-000000000004' } });

      const response = await call(createUser, { method: 'POST', path: users, body: { email: 'frances@example.com', name: 'Frances', requestId: 'b0000000-0000-4000-8000-000000000005' } });

      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('EMAIL_TAKEN');
    });
  });

  it.each([
    ['malformed JSON', '{"email": "x@example.com", "name": '],
    ['a missing name', { email: 'x@example.com' }],
    ['a numeric email', { email: 42, name: 'X' }],
    ['an invalid email', { email: 'not-an-email', name: 'X' }],
    ['an unknown field', { email: 'x@example.com', name: 'X', role: 'admin' }],
  ])('answers 400 for %s and writes nothing', async (_name, body) => {
    const before = await snapshot(app.admin);

    const response = await call(createUser, { method: 'POST', path: users, body });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('BAD_REQUEST');
    expect(await snapshot(app.admin)).toEqual(before);
  });

  it('creates neither row when the audit insert fails, and answers a generic 500 that hides the SQL error', async () => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const before = await snapshot(app.admin);
    await app.admin.query('ALTER TABLE audit_log RENAME TO audit_log_hidden');
    try {
      const response = await call(createUser, { method: 'POST', path: users, body: { email: 'lost@example.com', name: 'Lost' } });

      expect(response.status).toBe(500);
      expect(response.body.error).toEqual({ code: 'INTERNAL', message: 'An internal error occurred.', requestId: response.requestId });
      expect(JSON.stringify(response.body)).not.toMatch(/audit|relation|lost@/);
      expect(logged).toHaveBeenCalledTimes(1);
      expect(JSON.parse(logged.mock.calls[0][0])).toMatchObject({ level: 'ERROR', handler: 'create-user', requestId: response.requestId, sqlState: '42P01' });
      expect(String(logged.mock.calls[0][0])).not.toContain('lost@');
    } finally {
      await app.admin.query('ALTER TABLE audit_log_hidden RENAME TO audit_log');
      logged.mockRestore();
    }
    expect(await snapshot(app.admin)).toEqual(before);
  });
});

describe('get-user', () => {
  it('answers 200 with the user, and 404 for an unknown id or one of another tenant', async () => {
    const created = (await call(createUser, { method: 'POST', path: users, body: { email: 'linus@example.com', name: 'Linus' } })).body.user;
    const foreign = (await call(createUser, { method: 'POST', path: `/tenants/${OTHER_TENANT}/users`, body: { email: 'ken@example.com', name: 'Ken' } })).body.user;

    const found = await call(getUser, { method: 'GET', path: `${users}/${created.id}` });
    const unknown = await call(getUser, { method: 'GET', path: `${users}/${UNKNOWN}` });
    const crossTenant = await call(getUser, { method: 'GET', path: `${users}/${foreign.id}` });

    expect(found).toMatchObject({ status: 200, body: { user: created } });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'User not found.' } } });
    expect(crossTenant.status).toBe(404);
  });
});

describe('list-users', () => {
  it('lists the tenant\'s users oldest first, at most `limit`', async () => {
    const { rows } = await app.admin.query('SELECT email FROM users WHERE tenant_id = $1 ORDER BY created_at, id', [TENANT]);

    const all = await call(listUsers, { method: 'GET', path: users });
    const one = await call(listUsers, { method: 'GET', path: `${users}?limit=1` });

    expect(all.status).toBe(200);
    expect(all.body.users.map((u: { email: string }) => u.email)).toEqual(rows.map((r) => r.email));
    expect(all.body.limit).toBe(20);
    expect(one.body.users).toHaveLength(1);
    expect(one.body.users[0].email).toBe(rows[0].email);
  });

  it('pages through every user once, in order, with nextCursor (null on the last page)', async () => {
    const pagingTenant = 'a0000000-0000-4000-8000-000000000004';
    await app.admin.query(`INSERT INTO tenants (id, name) VALUES ($1, 'Paging')`, [pagingTenant]);
    // Five users in one statement share created_at: the id decides their order, and the cursor must carry it.
    await app.admin.query(`INSERT INTO users (tenant_id, email, name) SELECT $1, 'p' || n || '@example.com', 'P' || n FROM generate_series(1, 5) n`, [pagingTenant]);
    await app.admin.query(`INSERT INTO users (tenant_id, email, name) VALUES ($1, 'late@example.com', 'Late')`, [pagingTenant]);
    const { rows } = await app.admin.query('SELECT id FROM users WHERE tenant_id = $1 ORDER BY created_at, id', [pagingTenant]);

    const pages: Array<{ users: Array<{ id: string }>; nextCursor: string | null }> = [];
    let cursor: string | null = null;
    do {
      const response = await call(listUsers, { method: 'GET', path: `/tenants/${pagingTenant}/users?limit=4${cursor ? `&cursor=${cursor}` : ''}` });
      expect(response.status).toBe(200);
      pages.push(response.body);
      cursor = response.body.nextCursor;
    } while (cursor !== null && pages.length < 10);

    expect(pages.map((page) => page.users.length)).toEqual([4, 2]);
    expect(pages.flatMap((page) => page.users.map((user) => user.id))).toEqual(rows.map((row) => row.id));
    expect(pages[1].nextCursor).toBeNull();
  });

  it.each([
    ['an unknown query parameter', '?offset=4', 'Unexpected query parameter `offset`; expected only `limit`, `cursor`.'],
    ['a cursor that is not one of ours', '?cursor=bm90LWEtY3Vyc29y', 'Expected query parameter `cursor` to be the `nextCursor` of a previous page.'],
  ])('answers 400 for %s', async (_name, queryString, message) => {
    const response = await call(listUsers, { method: 'GET', path: `${users}${queryString}` });

    expect(response.status).toBe(400);
    expect(response.body.error).toEqual({ code: 'BAD_REQUEST', message });
  });

  it('answers an empty list for a tenant without users and 404 for an unknown tenant', async () => {
    expect(await call(listUsers, { method: 'GET', path: `/tenants/${EMPTY_TENANT}/users` })).toMatchObject({ status: 200, body: { users: [], nextCursor: null } });
    expect(await call(listUsers, { method: 'GET', path: `/tenants/${UNKNOWN}/users` })).toMatchObject({ status: 404 });
  });

  it('answers 400 for a limit out of range', async () => {
    const response = await call(listUsers, { method: 'GET', path: `${users}?limit=101` });

    expect(response.status).toBe(400);
    expect(response.body.error.message).toBe('Expected query parameter `limit` to be an integer from 1 to 100.');
  });
});
