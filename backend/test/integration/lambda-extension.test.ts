// Credentials through the AWS Parameters and Secrets Lambda Extension's HTTP API (a local stand-in that checks the
// X-Aws-Parameters-Secrets-Token header), chosen automatically when PARAMETERS_SECRETS_EXTENSION_HTTP_PORT is set.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startLocalSecretsManager, LocalSecretsManager } from '../../../scripts/lib/local-secrets-manager';
import { createDatabase, CredentialsError, Database, resolveDbConfig } from '../../src/shared/db';
import { createExtensionFetcher } from '../../src/shared/db/secret-fetchers';
import { createRole, createTestDatabase, testServer } from './support/postgres';

const server = testServer();
let secrets: LocalSecretsManager;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];

function database(env: Record<string, string>): Database {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const db = createDatabase({ secretId: 'ext/db', sslCaFile: server.caFile, logLevel: 'silent' });
    open.push(db);
    return db;
  } finally {
    process.env = saved;
  }
}

beforeAll(async () => {
  const created = await createTestDatabase('ext');
  dropDatabase = created.drop;
  await createRole('ext_user', 'ext-password');
  secrets = await startLocalSecretsManager({ extensionToken: 'session-token-1' });
  secrets.putSecretValue('ext/db', JSON.stringify({ username: 'ext_user', password: 'ext-password', host: server.host, port: server.port, dbname: created.name }));
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await secrets?.close();
  await dropDatabase?.();
});

describe('the Lambda extension as a credential source', () => {
  it('is chosen when the extension port variable is set', () => {
    const config = resolveDbConfig({ secretId: 'ext/db' }, { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '2773' });

    expect(config.secretSource).toBe('extension');
    expect(config.extensionPort).toBe(2773);
  });

  it('reads the secret over HTTP with the session token and connects', async () => {
    const db = database({ PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(secrets.port), AWS_SESSION_TOKEN: 'session-token-1' });
    secrets.resetCalls();

    const { rows } = await db.query('SELECT current_user AS user');

    expect(rows[0].user).toBe('ext_user');
    expect(db.credentialsSource).toBe('secret ext/db (via the Lambda extension)');
    expect(secrets.calls).toEqual([expect.objectContaining({ secretId: 'ext/db', versionStage: 'AWSCURRENT', via: 'extension' })]);
  });

  it('fails with a CredentialsError naming the status when the token is refused', async () => {
    const db = database({ PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(secrets.port), AWS_SESSION_TOKEN: 'stale-token' });

    const error = await db.query('SELECT 1').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as Error).message).toMatch(/Lambda Extension on port \d+ failed: HTTP 403/);
    expect((error as Error).message).not.toContain('stale-token');
  });

  describe('an extension that misbehaves', () => {
    let stub: Server;
    let answer: (res: ServerResponse) => void;

    beforeAll(async () => {
      stub = createServer((_, res) => answer(res));
      await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      stub.closeAllConnections();
      await new Promise((resolve) => stub.close(resolve));
    });

    const fetcher = (timeoutMillis: number) => {
      const port = String((stub.address() as AddressInfo).port);
      return createExtensionFetcher(resolveDbConfig({ secretId: 'ext/db' }, { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: port, AWS_SESSION_TOKEN: 't' }), timeoutMillis);
    };
    const elapsed = async (work: Promise<unknown>) => {
      const startedAt = Date.now();
      const error = await work.then(() => undefined, (e: unknown) => e);
      return { error, millis: Date.now() - startedAt };
    };

    it('fails at once when the connection closes in the middle of the answer', async () => {
      answer = (res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
        res.write('{"SecretString":"{\\"password\\":"', () => res.socket?.destroy());
      };

      const { error, millis } = await elapsed(fetcher(5000)('AWSCURRENT'));

      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as Error).message).toMatch(/Lambda Extension on port \d+ failed: the answer was cut off\.$/);
      expect(millis).toBeLessThan(2000);
    });

    it('fails at its timeout when the answer trickles in and never ends', async () => {
      let trickle: NodeJS.Timeout | undefined;
      answer = (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        trickle = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(trickle));
      };

      const { error, millis } = await elapsed(fetcher(400)('AWSCURRENT'));
      clearInterval(trickle);

      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as Error).message).toMatch(/no complete answer within 400 ms\.$/);
      expect(millis).toBeGreaterThanOrEqual(395);
      expect(millis).toBeLessThan(2000);
    });
  });
});
