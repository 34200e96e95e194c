// The user resource as the API shows it, shared by create-user, get-user and list-users: one column list and one
// row-to-JSON mapping, so the three handlers can never disagree on a field name.
// Timestamps go out as ISO 8601 strings; ids are lower-case UUIDs.

/** A user as returned by the API. */
export interface User {
  readonly id: string;
  readonly tenantId: string;
  readonly email: string;
  readonly name: string;
  readonly createdAt: string;
}

/** A users row as selected with USER_COLUMNS. */
export interface UserRow {
  readonly id: string;
  readonly tenant_id: string;
  readonly email: string;
  readonly name: string;
  readonly created_at: Date;
}

/** The columns every user query selects. */
export const USER_COLUMNS = 'id, tenant_id, email, name, created_at';

/** Maps a users row to its API shape. */
export function toUser(row: UserRow): User {
  return { id: row.id, tenantId: row.tenant_id, email: row.email, name: row.name, createdAt: row.created_at.toISOString() };
}
