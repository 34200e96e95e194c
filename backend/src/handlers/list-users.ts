// GET /tenants/{tenantId}/users?limit=N&cursor=C: a tenant's users, oldest first, `limit` (1-100, default 20) a page,
// with `nextCursor` for the next page (null on the last). Keyset paging on (created_at, id): a page never repeats or
// skips a row that existed when the first page was read (a user created meanwhile appears on a later page, unless
// its transaction began before the cursor's row was created). One statement tells an unknown tenant (no row: 404)
// from a tenant without users (one row of NULLs), so a page costs a single round trip.
import type { Context } from 'aws-lambda';
import { query } from '../shared/db';
import { badRequest, createHandler, json, notFound, type HttpEvent, type HttpResult } from './http';
import { toUser, type UserRow } from './user-row';
import { isUuid, pathUuid, queryInteger, rejectUnknownQuery } from './validate';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
// created_at goes into the cursor to the microsecond (a JavaScript Date would drop the last three digits).
const SELECT_USERS = `
  SELECT u.id, u.tenant_id, u.email, u.name, u.created_at, u.cursor_at
  FROM tenants t
  LEFT JOIN LATERAL (
    SELECT id, tenant_id, email, name, created_at,
           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
    FROM users
    WHERE tenant_id = t.id AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::uuid))
    ORDER BY created_at, id LIMIT $2
  ) u ON true
  WHERE t.id = $1
  ORDER BY u.created_at, u.id`;

const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The position after `row`, opaque to clients. */
function cursorAfter(row: { cursor_at: string; id: string }): string {
  return Buffer.from(`${row.cursor_at}|${row.id}`).toString('base64url');
}

/** The position a cursor names, or a 400 for anything that is not one of ours. */
function parseCursor(event: HttpEvent): [string, string] | [null, null] {
  const raw = event.queryStringParameters?.cursor;
  if (raw === undefined) return [null, null];
  const [at, id, extra] = /^[A-Za-z0-9_-]{1,200}$/.test(raw) ? Buffer.from(raw, 'base64url').toString().split('|') : [];
  if (!CURSOR_AT.test(at ?? '') || !isUuid(id) || extra !== undefined) {
    throw badRequest('Expected query parameter `cursor` to be the `nextCursor` of a previous page.');
  }
  return [at, id];
}

async function listUsers(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  rejectUnknownQuery(event, ['limit', 'cursor']);
  const limit = queryInteger(event, 'limit', 1, MAX_LIMIT, DEFAULT_LIMIT);
  const [afterAt, afterId] = parseCursor(event);

  // One row more than the page tells whether there is a next page.
  const { rows } = await query<(UserRow & { cursor_at: string }) | { id: null }>(SELECT_USERS, [tenantId, limit + 1, afterAt, afterId], { context, readOnly: true, idempotent: true });
  if (rows.length === 0) throw notFound('Tenant not found.');
  const found = rows.filter((row): row is UserRow & { cursor_at: string } => row.id !== null);
  const page = found.slice(0, limit);
  const nextCursor = found.length > limit ? cursorAfter(page[page.length - 1]) : null;
  return json(200, { users: page.map(toUser), limit, nextCursor });
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('list-users', listUsers);
