// The application role of the local stack: a login role that is not a superuser and owns its own database, as a
// deployed function's role would be. Its password is generated on the first run and kept (0600) beside the cluster, so
// the Secrets Manager secret and the role agree across runs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Client } from 'pg';

/** The login role the handlers connect as; it owns {@link APP_DATABASE}. */
export const APP_ROLE = 'lambda_pg_app';
/** The database the migrations and the handlers use. */
export const APP_DATABASE = 'lambda_pg';

/** A PostgreSQL server that is already running, and its superuser; the stack creates its role and database there. */
export interface ExistingPostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly dataDir: string;
}

/** Creates the application role and its database where missing; the role's password is generated once and kept. */
export async function ensureAppRole(server: ExistingPostgres, passwordFile: string): Promise<string> {
  const password = fs.existsSync(passwordFile) ? fs.readFileSync(passwordFile, 'utf8').trim() : crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(passwordFile, password, { mode: 0o600 });
  const { host, port, user, caPem } = server;
  const admin = new Client({ host, port, user, password: server.password, database: 'postgres', ssl: { ca: caPem } });
  await admin.connect();
  try {
    const role = admin.escapeIdentifier(APP_ROLE);
    const roleExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE])).rowCount === 1;
    // ALTER as well as CREATE: the password file is the truth, also after someone deleted it.
    await admin.query(`${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN NOSUPERUSER PASSWORD ${admin.escapeLiteral(password)}`);
    const databaseExists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [APP_DATABASE])).rowCount === 1;
    // As the database's owner the role may create tables in its public schema (PostgreSQL 15+ grants that to the owner only).
    if (!databaseExists) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(APP_DATABASE)} OWNER ${role}`);
  } finally {
    await admin.end();
  }
  return password;
}
