// Parses and validates a secret's JSON (the RDS/Aurora format: username, password, host, port, dbname, engine).
// Errors name the secret and the field, never a value; JSON.parse's own message is dropped because it quotes the input.
import { CredentialsError } from './errors';

/** Connection credentials; `password` is non-enumerable so it never appears in a logged object. */
export interface DbCredentials {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** Where they came from, e.g. `secret my-app/db (AWSCURRENT)`; safe to log. */
  readonly source: string;
}

/** Values from configuration that fill or override the secret's connection fields. */
export interface CredentialOverrides {
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
}

/** Builds a DbCredentials whose password cannot leak through JSON.stringify or util.inspect. */
export function makeCredentials(fields: Omit<DbCredentials, 'password'>, password: string): DbCredentials {
  const credentials = { ...fields };
  Object.defineProperty(credentials, 'password', { value: password, enumerable: false });
  return Object.freeze(credentials) as DbCredentials;
}

function field(secret: Record<string, unknown>, name: string, label: string): string | undefined {
  const value = secret[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new CredentialsError(`Secret ${label} has a field ${name} that is not a non-empty string.`);
  }
  return value;
}

function port(secret: Record<string, unknown>, label: string): number | undefined {
  const value = secret.port;
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65_535) {
    throw new CredentialsError(`Secret ${label} has a field port that is not a port number (1-65535).`);
  }
  return n;
}

/** Parses a SecretString into credentials, with configuration overriding the secret's host, port and database. */
export function parseSecret(secretString: string | undefined, label: string, overrides: CredentialOverrides): DbCredentials {
  if (secretString === undefined) {
    throw new CredentialsError(`Secret ${label} has no SecretString; expected JSON with username and password.`);
  }
  let secret: unknown;
  try {
    secret = JSON.parse(secretString);
  } catch {
    throw new CredentialsError(`Secret ${label} is not valid JSON; expected an object with username and password.`);
  }
  if (typeof secret !== 'object' || secret === null || Array.isArray(secret)) {
    throw new CredentialsError(`Secret ${label} is not a JSON object; expected an object with username and password.`);
  }
  const record = secret as Record<string, unknown>;
  const user = field(record, 'username', label);
  const password = field(record, 'password', label);
  if (!user) throw new CredentialsError(`Secret ${label} has no username field.`);
  if (!password) throw new CredentialsError(`Secret ${label} has no password field.`);
  const engine = field(record, 'engine', label);
  if (engine && !engine.toLowerCase().includes('postgres')) {
    throw new CredentialsError(`Secret ${label} has an engine field that does not name PostgreSQL; expected postgres or aurora-postgresql.`);
  }
  const host = overrides.host ?? field(record, 'host', label);
  if (!host) {
    throw new CredentialsError(`Secret ${label} has no host field and DB_HOST is not set; RDS-managed secrets carry only username and password.`);
  }
  return makeCredentials(
    {
      user,
      host,
      port: overrides.port ?? port(record, label) ?? 5432,
      database: overrides.database ?? field(record, 'dbname', label) ?? 'postgres',
      source: `secret ${label}`,
    },
    password,
  );
}
