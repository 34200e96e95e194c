// GET /tenants/{tenantId}/users/{userId}: one user of one tenant, or 404. A user id of another tenant is also
// 404, so ids cannot be probed across tenants. One read-only, idempotent statement: the module may retry it on a
// lost connection. Route: GET /tenants/{tenantId}/users/{userId}.
import type { Context } from 'aws-lambda';
import { query } from '../shared/db';
import { createHandler, json, notFound, type HttpEvent, type HttpResult } from './http';
import { toUser, USER_COLUMNS, type UserRow } from './user-row';
import { pathUuid } from './validate';

const SELECT_USER = `SELECT ${USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2`;

async function getUser(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  const userId = pathUuid(event, 'userId');

  const { rows } = await query<UserRow>(SELECT_USER, [tenantId, userId], { context, readOnly: true, idempotent: true });
  if (rows.length === 0) throw notFound('User not found.');
  return json(200, { user: toUser(rows[0]) });
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('get-user', getUser);
