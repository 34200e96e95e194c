import { inspect } from 'node:util';
import { CredentialsError } from '../../src/shared/db/errors';
import { makeCredentials, parseSecret } from '../../src/shared/db/secret-format';
import { errorText, thrown } from './support/errors';

const LABEL = 'app/db';

const RDS_SECRET = {
  engine: 'postgres',
  host: 'db.abc123.eu-west-1.rds.amazonaws.com',
  port: 5432,
  username: 'app',
  password: 'hunter2-Secret!',
  dbname: 'orders',
  dbClusterIdentifier: 'orders-cluster',
};

/** Runs `fn` and returns what it threw. */

describe('parseSecret', () => {
  it('reads the RDS JSON format', () => {
    const credentials = parseSecret(JSON.stringify(RDS_SECRET), LABEL, {});

    expect(credentials).toMatchObject({ user: 'app', host: RDS_SECRET.host, port: 5432, database: 'orders', source: 'secret app/db' });
    expect(credentials.password).toBe('hunter2-Secret!');
  });

  it('accepts the engine name of Aurora PostgreSQL', () => {
    const credentials = parseSecret(JSON.stringify({ ...RDS_SECRET, engine: 'aurora-postgresql' }), LABEL, {});

    expect(credentials.user).toBe('app');
  });

  it('takes host, port and database from configuration for an RDS-managed secret', () => {
    const managed = JSON.stringify({ username: 'postgres', password: 'managed-Secret!' });

    const credentials = parseSecret(managed, LABEL, { host: 'proxy.local', port: 6432, database: 'orders' });

    expect(credentials).toMatchObject({ user: 'postgres', host: 'proxy.local', port: 6432, database: 'orders' });
    expect(credentials.password).toBe('managed-Secret!');
  });

  it('defaults the port to 5432 and the database to postgres', () => {
    const credentials = parseSecret(JSON.stringify({ username: 'app', password: 'pw', host: 'db.local' }), LABEL, {});

    expect(credentials.port).toBe(5432);
    expect(credentials.database).toBe('postgres');
  });

  it.each([
    ['a number', 6543],
    ['a string', '6543'],
  ])('reads the port as %s', (_, port) => {
    const credentials = parseSecret(JSON.stringify({ ...RDS_SECRET, port }), LABEL, {});

    expect(credentials.port).toBe(6543);
  });

  it('lets configuration override the secret', () => {
    const credentials = parseSecret(JSON.stringify(RDS_SECRET), LABEL, { host: 'proxy.local', port: 6432, database: 'reports' });

    expect(credentials).toMatchObject({ host: 'proxy.local', port: 6432, database: 'reports' });
  });

  it.each(['username', 'password'])('names the missing field %s', (name) => {
    const secret: Record<string, unknown> = { ...RDS_SECRET };
    delete secret[name];

    const error = thrown(() => parseSecret(JSON.stringify(secret), LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toContain(name);
    expect(error.message).toContain(LABEL);
  });

  it('names the missing host and the variable that can supply it', () => {
    const error = thrown(() => parseSecret(JSON.stringify({ username: 'app', password: 'pw' }), LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/host/);
    expect(error.message).toMatch(/DB_HOST/);
  });

  it('rejects a field of the wrong type without echoing its value', () => {
    const error = thrown(() => parseSecret(JSON.stringify({ ...RDS_SECRET, password: 918273645 }), LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toContain('password');
    expect(errorText(error)).not.toContain('918273645');
  });

  it.each([
    ['zero', 0],
    ['too large', 70_000],
    ['not a number', 'fifty'],
  ])('rejects a port that is %s', (_, port) => {
    const error = thrown(() => parseSecret(JSON.stringify({ ...RDS_SECRET, port }), LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/port/);
  });

  it('rejects a secret of another engine', () => {
    const error = thrown(() => parseSecret(JSON.stringify({ ...RDS_SECRET, engine: 'mysql' }), LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/engine/);
    expect(error.message).toMatch(/postgres/);
  });

  it('rejects a secret without a SecretString', () => {
    const error = thrown(() => parseSecret(undefined, LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/SecretString/);
  });

  it.each([
    ['an array', '["app","pw"]'],
    ['a string', '"app:pw"'],
    ['null', 'null'],
  ])('rejects JSON that is %s', (_, secretString) => {
    const error = thrown(() => parseSecret(secretString, LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/JSON object/);
  });

  it('rejects malformed JSON without the secret in its message, stack or cause chain', () => {
    const truncated = '{"username":"u","password":"hunter2-Secret!"';

    const error = thrown(() => parseSecret(truncated, LABEL, {}));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toMatch(/not valid JSON/);
    expect(error.message).toContain(LABEL);
    const text = errorText(error);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(truncated);
  });

  it('keeps the password out of JSON.stringify and util.inspect', () => {
    const credentials = parseSecret(JSON.stringify(RDS_SECRET), LABEL, {});

    expect(JSON.stringify(credentials)).not.toContain('hunter2');
    expect(inspect(credentials)).not.toContain('hunter2');
    expect(Object.keys(credentials)).not.toContain('password');
  });

  it('returns frozen credentials', () => {
    const credentials = parseSecret(JSON.stringify(RDS_SECRET), LABEL, {});

    expect(Object.isFrozen(credentials)).toBe(true);
  });
});

describe('makeCredentials', () => {
  it('keeps the password readable but not enumerable', () => {
    const credentials = makeCredentials({ user: 'app', host: 'db.local', port: 5432, database: 'app', source: 'test' }, 'made-Secret!');

    expect(credentials.password).toBe('made-Secret!');
    expect(JSON.stringify(credentials)).not.toContain('made-Secret!');
    expect(inspect(credentials)).not.toContain('made-Secret!');
  });
});
