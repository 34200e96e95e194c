// POST /tenants/{tenantId}/users: creates a user and its audit row in one transaction, so neither exists without
// the other. A duplicate email in the tenant is 409 (the unique constraint decides, not a racy lookup first) and
// an unknown tenant is 404 (the foreign key decides). An optional `requestId` is an idempotency key: a retry after
// an unknown outcome gets the user its first request made (200) instead of a 409 for its own email.
import type { Context } from 'aws-lambda';
import type { PoolClient } from 'pg';
import { ForeignKeyViolationError, query, UniqueViolationError, withTransaction } from '../shared/db';
import { createHandler, HttpError, json, notFound, type HttpEvent, type HttpResult } from './http';
import { toUser, USER_COLUMNS, type UserRow } from './user-row';
import { optionalUuid, parseJsonBody, pathUuid, rejectUnknownFields, requireEmail, requireString } from './validate';

const INSERT_USER = `INSERT INTO users (tenant_id, email, name, request_id) VALUES ($1, $2, $3, $4) RETURNING ${USER_COLUMNS}`;
const SELECT_BY_REQUEST = `SELECT ${USER_COLUMNS} FROM users WHERE tenant_id = $1 AND request_id = $2`;
const INSERT_AUDIT = `INSERT INTO audit_log (tenant_id, action, entity_type, entity_id, request_id)
  VALUES ($1, 'user.created', 'user', $2, $3)`;

interface NewUser {
  readonly tenantId: string;
  readonly email: string;
  readonly name: string;
  readonly requestId?: string;
}

/** One attempt; it may run again from the top, so it only talks to the database. */
async function createOnce(client: PoolClient, user: NewUser, awsRequestId: string): Promise<{ row: UserRow; replayed: boolean }> {
  if (user.requestId) {
    const previous = await client.query<UserRow>(SELECT_BY_REQUEST, [user.tenantId, user.requestId]);
    if (previous.rows.length > 0) return { row: previous.rows[0], replayed: true };
  }
  const { rows } = await client.query<UserRow>(INSERT_USER, [user.tenantId, user.email, user.name, user.requestId ?? null]);
  await client.query(INSERT_AUDIT, [user.tenantId, rows[0].id, awsRequestId]);
  return { row: rows[0], replayed: false };
}

/** 201 for a new user, 200 for a replay, 422 when the key was used for a different user. */
function respond(row: UserRow, user: NewUser, replayed: boolean): HttpResult {
  if (replayed && (row.email !== user.email || row.name !== user.name)) {
    throw new HttpError(422, 'REQUEST_ID_REUSED', 'This `requestId` was already used to create a different user.');
  }
  const created = toUser(row);
  const headers = { location: `/tenants/${user.tenantId}/users/${created.id}`, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) };
  return json(replayed ? 200 : 201, { user: created }, headers);
}

async function createUser(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  const body = parseJsonBody(event);
  rejectUnknownFields(body, ['email', 'name', 'requestId']);
  const user: NewUser = { tenantId, email: requireEmail(body, 'email'), name: requireString(body, 'name', 1, 200), requestId: optionalUuid(body, 'requestId') };

  try {
    const { row, replayed } = await withTransaction((client) => createOnce(client, user, context.awsRequestId), { context });
    return respond(row, user, replayed);
  } catch (err) {
    // A concurrent request with the same key committed first (either constraint may report it): answer with its user.
    if (err instanceof UniqueViolationError && user.requestId) {
      // Not readOnly: a reader endpoint may lag behind the writer that just committed the row.
      const { rows } = await query<UserRow>(SELECT_BY_REQUEST, [tenantId, user.requestId], { context, idempotent: true });
      if (rows.length > 0) return respond(rows[0], user, true);
    }
    if (err instanceof UniqueViolationError && err.constraint === 'users_tenant_email_key') {
      throw new HttpError(409, 'EMAIL_TAKEN', 'A user with this email already exists in this tenant.');
    }
    if (err instanceof ForeignKeyViolationError && err.constraint === 'users_tenant_fk') {
      throw notFound('Tenant not found.');
    }
    throw err;
  }
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler('create-user', createUser);
