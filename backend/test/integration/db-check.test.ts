// `npm run db:check` as a child process against the shared test server, as an application role over verified TLS:
// every check passes with its figure and exit code 0; a foreign CA, a bad DB_POOL_MAX and a wrong password each
// fail with exit code 1 and one line that names the cause and the fix; the password never appears.
import crypto from 'node:crypto';
import { adminClient, createRole, createTestDatabase, testServer, type TestDatabase } from './support/postgres';
import { runScript, scriptEnv } from './support/run-script';

const role = `db_check_${crypto.randomBytes(4).toString('hex')}`;
// Characters that must survive percent-encoding in DATABASE_URL.
const password = `p@ss:/${crypto.randomBytes(12).toString('hex')}%`;
let database: TestDatabase;

function databaseUrl(secret = password): string {
  const { host, port } = testServer();
  return `postgres://${role}:${encodeURIComponent(secret)}@${host}:${port}/${database.name}`;
}

function dbCheck(env: Record<string, string>, args: string[] = ['--count', '5']): Promise<{ code: number | null; output: string }> {
  return runScript('db-check.ts', args, scriptEnv(env));
}

/** The output line of one check, e.g. `FAIL  connect      TlsError: …`. */
function lineOf(output: string, check: string): string | undefined {
  return output.split('\n').find((line) => new RegExp(`^(PASS|FAIL|SKIP)  ${check} `).test(line));
}

beforeAll(async () => {
  database = await createTestDatabase('db_check');
  await createRole(role, password);
});

afterAll(async () => {
  await database?.drop();
  const admin = await adminClient();
  await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`).finally(() => admin.end());
});

describe('npm run db:check', () => {
  it('passes every check over verified TLS, with its figures, and exits 0', async () => {
    const { code, output } = await dbCheck({ DATABASE_URL: databaseUrl(), DB_SSL_CA_FILE: testServer().caFile });

    expect(code).toBe(0);
    expect(lineOf(output, 'config')).toMatch(/^PASS .*credentials from DATABASE_URL; DB_SSL=verify-full/);
    expect(lineOf(output, 'credentials')).toContain(`user ${role} at localhost:${testServer().port}/${database.name} (password not shown)`);
    expect(lineOf(output, 'connect')).toMatch(new RegExp(`^PASS .*PostgreSQL \\d+\\.\\d+ as ${role} in \\d+ ms$`));
    expect(lineOf(output, 'tls')).toMatch(/^PASS .*TLSv1\.[23], \S+/);
    expect(lineOf(output, 'certificate')).toMatch(/^PASS .*verified \(DB_SSL=verify-full\)/);
    expect(lineOf(output, 'latency')).toMatch(/^PASS .*p50 [\d.]+ ms, p99 [\d.]+ ms over 5 round trips/);
    expect(lineOf(output, 'pool')).toMatch(/^PASS .*max 2 \(DB_POOL_MAX\), connect timeout 3000 ms/);
    expect(lineOf(output, 'transaction')).toMatch(/^PASS .*COMMIT \(txid \d+\)/);
    expect(lineOf(output, 'reader')).toMatch(/^PASS .*none configured \(DB_READER_HOST\)/);
    expect(output).toContain('All 9 checks passed.');
    expect(output).not.toContain(password);
    expect(output).not.toContain(encodeURIComponent(password));
  });

  it('fails the reader check, and only it, when the reader endpoint does not answer', async () => {
    const { code, output } = await dbCheck({ DATABASE_URL: databaseUrl(), DB_SSL_CA_FILE: testServer().caFile, DB_READER_HOST: '127.0.0.1', DB_READER_PORT: '1' });

    expect(code).toBe(1);
    expect(lineOf(output, 'reader')).toMatch(/^FAIL .*reader endpoint 127\.0\.0\.1:1 did not answer \(DB_CONNECTION\).*reads fall back to the writer/);
    expect(lineOf(output, 'transaction')).toMatch(/^PASS /);
    expect(output).toMatch(/1 of 9 checks failed\./);
  });

  it('fails on a CA that did not sign the server certificate, in one line naming DB_SSL_CA_FILE', async () => {
    const { code, output } = await dbCheck({ DATABASE_URL: databaseUrl(), DB_SSL_CA_FILE: testServer().otherCaFile });

    expect(code).toBe(1);
    expect(lineOf(output, 'connect')).toMatch(/^FAIL .*TlsError: TLS verification of the database server failed .* → point DB_SSL_CA_FILE at the CA/);
    expect(lineOf(output, 'tls')).toMatch(/^SKIP .*needs connect/);
    expect(output).toMatch(/1 of 9 checks failed, 6 skipped\./);
  });

  it('fails on a malformed DB_POOL_MAX, in one line naming the variable, before connecting', async () => {
    const { code, output } = await dbCheck({ DATABASE_URL: databaseUrl(), DB_SSL_CA_FILE: testServer().caFile, DB_POOL_MAX: 'lots' });

    expect(code).toBe(1);
    expect(lineOf(output, 'config')).toBe(
      'FAIL  config       ConfigurationError: Expected DB_POOL_MAX to be an integer from 1 to 1000, got "lots". → correct that setting; every variable is listed in docs/configuration.md',
    );
    expect(lineOf(output, 'credentials')).toMatch(/^SKIP /);
  });

  it('fails on a wrong password with the rotation explanation, never printing either password', async () => {
    const wrong = `wrong-${crypto.randomBytes(8).toString('hex')}`;

    const { code, output } = await dbCheck({ DATABASE_URL: databaseUrl(wrong), DB_SSL_CA_FILE: testServer().caFile });

    expect(code).toBe(1);
    expect(lineOf(output, 'connect')).toMatch(/^FAIL .*AuthenticationError: .*28P01.* → the secret's password is not the role's/);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(password);
  });

  it('refuses an unknown argument with the usage line and exit code 2', async () => {
    const { code, output } = await dbCheck({}, ['--count', '0']);

    expect(code).toBe(2);
    expect(output).toContain('Expected --count to be an integer from 1 to 100000, got "0". Usage: npm run db:check');
  });
});
