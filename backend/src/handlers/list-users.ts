// GET /tenants/{tenantId}/users?limit=N: a tenant's users, oldest first, at most `limit` (1-100, default 20).
// One statement tells an unknown tenant (no row: 404) from a tenant without users (one row of NULLs: an empty
// list), so the answer costs a single round trip. Route: GET /tenants/{tenantId}/users.
import type { Context } from 'aws-lambda';
import { query } from '../shared/db';
import { createHandler, json, notFound, type HttpEvent, type HttpResult } from './http';
import { toUser, type UserRow } from './user-row';
import { pathUuid, queryInteger } from './validate';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const SELECT_USERS = `
  SELECT u.id, u.tenant_id, u.email, u.name, u.created_at
  FROM tenants t
  LEFT JOIN LATERAL (
    SELECT id, tenant_id, email, name, created_at FROM users
    WHERE tenant_id = t.id ORDER BY created_at, id LIMIT $2
  ) u ON true
  WHERE t.id = $1
  ORDER BY u.created_at, u.id`;

async function listUsers(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  const limit = queryInteger(event, 'limit', 1, MAX_LIMIT, DEFAULT_LIMIT);

  const { rows } = await query<UserRow | { id: null }>(SELECT_USERS, [tenantId, limit], { context, readOnly: true, idempotent: true });
  if (rows.length === 0) throw notFound('Tenant not found.');
  const users = rows.filter((row): row is UserRow => row.id !== null).map(toUser);
  return json(200, { users, limit });
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('list-users', listUsers);
