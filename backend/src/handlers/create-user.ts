// POST /tenants/{tenantId}/users: creates a user and its audit row in one transaction, so neither exists without
// the other. A duplicate email in the tenant is 409 (the unique constraint decides, not a racy lookup first) and
// an unknown tenant is 404 (the foreign key decides). Route: POST /tenants/{tenantId}/users.
import type { Context } from 'aws-lambda';
import { ForeignKeyViolationError, UniqueViolationError, withTransaction } from '../shared/db';
import { createHandler, HttpError, json, notFound, type HttpEvent, type HttpResult } from './http';
import { toUser, USER_COLUMNS, type UserRow } from './user-row';
import { parseJsonBody, pathUuid, rejectUnknownFields, requireEmail, requireString } from './validate';

const INSERT_USER = `INSERT INTO users (tenant_id, email, name) VALUES ($1, $2, $3) RETURNING ${USER_COLUMNS}`;
const INSERT_AUDIT = `INSERT INTO audit_log (tenant_id, action, entity_type, entity_id, request_id)
  VALUES ($1, 'user.created', 'user', $2, $3)`;

async function createUser(event: HttpEvent, context: Context): Promise<HttpResult> {
  const tenantId = pathUuid(event, 'tenantId');
  const body = parseJsonBody(event);
  rejectUnknownFields(body, ['email', 'name']);
  const email = requireEmail(body, 'email');
  const name = requireString(body, 'name', 1, 200);

  try {
    const row = await withTransaction(async (client) => {
      const { rows } = await client.query<UserRow>(INSERT_USER, [tenantId, email, name]);
      await client.query(INSERT_AUDIT, [tenantId, rows[0].id, context.awsRequestId]);
      return rows[0];
    }, { context });
    const user = toUser(row);
    return json(201, { user }, { location: `/tenants/${tenantId}/users/${user.id}` });
  } catch (err) {
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
