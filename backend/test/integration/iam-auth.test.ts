// IAM database authentication: a signer stand-in whose token becomes the role's password on the real server, so
// the module must present a freshly signed token on every new connection and sign again after expiry or a 28P01.
import { createDatabase, Database, IamTokenSigner, resolveDbConfig, ConfigurationError } from '../../src/shared/db';
import { createRole, createTestDatabase, setRolePassword, terminateBackends, testServer } from './support/postgres';

const server = testServer();
let dbName: string;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];

/** Signs "tokens" by setting them as the role's password, the way RDS would accept them. */
function standInSigner(): { signer: IamTokenSigner; signed: string[] } {
  const signed: string[] = [];
  const signer: IamTokenSigner = async ({ username, hostname, port }) => {
    const token = `${hostname}:${port}/?Action=connect&DBUser=${username}&X-Amz-Signature=${signed.length + 1}`;
    await setRolePassword(username, token);
    signed.push(token);
    return token;
  };
  return { signer, signed };
}

function database(signer: IamTokenSigner, applicationName: string): Database {
  const db = createDatabase({
    auth: 'iam', user: 'iam_user', host: server.host, port: server.port, database: dbName,
    sslCaFile: server.caFile, iamTokenSigner: signer, applicationName, logLevel: 'silent',
  });
  open.push(db);
  return db;
}

beforeAll(async () => {
  ({ name: dbName, drop: dropDatabase } = await createTestDatabase('iam'));
  await createRole('iam_user', 'unused-initial-password');
});

afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await dropDatabase?.();
});

describe('IAM authentication', () => {
  it('connects with a signed token and reuses it for new connections while it is fresh', async () => {
    const { signer, signed } = standInSigner();
    const db = database(signer, 'iam-fresh');

    const first = await db.query('SELECT current_user AS user');
    await terminateBackends({ applicationName: 'iam-fresh' });
    await db.query('SELECT 1');

    expect(first.rows[0].user).toBe('iam_user');
    expect(signed).toHaveLength(1);
    expect(db.credentialsSource).toBe(`IAM token for iam_user@${server.host}`);
  });

  it('signs a new token for a new connection once the old one is 10 minutes old', async () => {
    const { signer, signed } = standInSigner();
    const db = database(signer, 'iam-expiry');
    await db.query('SELECT 1');
    const signedAt = Date.now();
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'queueMicrotask', 'hrtime', 'performance'] });

    jest.setSystemTime(signedAt + 9 * 60_000);
    await terminateBackends({ applicationName: 'iam-expiry' });
    await db.query('SELECT 1');
    const signedBy9Minutes = signed.length;
    jest.setSystemTime(signedAt + 11 * 60_000);
    await terminateBackends({ applicationName: 'iam-expiry' });
    const { rows } = await db.query('SELECT current_user AS user');

    expect(signedBy9Minutes).toBe(1);
    expect(rows[0].user).toBe('iam_user');
    expect(signed).toHaveLength(2);
  });

  it('signs again at once when the server rejects a token', async () => {
    const { signer, signed } = standInSigner();
    const db = database(signer, 'iam-rejected');
    await db.query('SELECT 1');
    await setRolePassword('iam_user', 'revoked');
    await terminateBackends({ applicationName: 'iam-rejected' });

    const { rows } = await db.query('SELECT 1 AS ok');

    expect(rows[0].ok).toBe(1);
    expect(signed).toHaveLength(2);
  });

  it('refuses to run without TLS', () => {
    const attempt = () => resolveDbConfig({ auth: 'iam', user: 'u', host: 'db.example.com', ssl: 'disable' }, {});

    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(/DB_AUTH=iam requires TLS/);
  });
});
