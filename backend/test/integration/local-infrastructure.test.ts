// Proves the integration tests' own infrastructure before other tests lean on it: the local PostgreSQL serves
// verified TLS (and plaintext), refuses a foreign CA and survives a restart; the local Secrets Manager satisfies the
// real AWS SDK; the TCP proxy breaks, stalls and refuses pg connections on demand.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type ClientConfig } from 'pg';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../../scripts/lib/local-secrets-manager';
import { startTcpProxy, type TcpProxy } from '../../../scripts/lib/tcp-proxy';
import { adminClient, createTestDatabase, restartServer, terminateBackends, testServer } from './support/postgres';

function serverConfig(overrides: ClientConfig = {}): ClientConfig {
  const { host, port, user, password } = testServer();
  return { host, port, user, password, database: 'postgres', ...overrides };
}

async function connect(config: ClientConfig): Promise<Client> {
  const client = new Client(config);
  client.on('error', () => undefined); // these tests break connections on purpose
  await client.connect();
  return client;
}

async function sslOfOwnSession(client: Client): Promise<boolean> {
  const result = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  return result.rows[0].ssl;
}

async function untilSessionsEnd(admin: Client, database: string): Promise<void> {
  const others = 'SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()';
  while ((await admin.query<{ count: number }>(others, [database])).rows[0].count > 0) await delay(20);
}

describe('local PostgreSQL', () => {
  it('serves TLS verified against the local CA, as pg_stat_ssl shows', async () => {
    const client = await connect(serverConfig({ ssl: { ca: testServer().caPem, rejectUnauthorized: true } }));

    const ssl = await sslOfOwnSession(client).finally(() => client.end());

    expect(ssl).toBe(true);
  });

  it('also accepts plaintext connections, which pg_stat_ssl tells apart', async () => {
    const client = await connect(serverConfig({ ssl: false }));

    const ssl = await sslOfOwnSession(client).finally(() => client.end());

    expect(ssl).toBe(false);
  });

  it('refuses a client that trusts only another CA', async () => {
    const client = new Client(serverConfig({ ssl: { ca: testServer().otherCaPem, rejectUnauthorized: true } }));

    const connecting = client.connect();

    await expect(connecting).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('terminates only the sessions whose application_name it is given', async () => {
    const doomed = await connect(serverConfig({ application_name: 'infrastructure-doomed' }));
    const bystander = await connect(serverConfig({ application_name: 'infrastructure-bystander' }));

    const terminated = await terminateBackends({ applicationName: 'infrastructure-doomed' });

    expect(terminated).toBe(1);
    await expect(doomed.query('SELECT 1')).rejects.toThrow();
    await expect(bystander.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await Promise.all([doomed.end(), bystander.end()]);
  });

  it('comes back from a restart, having cut the sessions that were open', async () => {
    const before = await adminClient();

    await restartServer();

    await expect(before.query('SELECT 1')).rejects.toThrow();
    const after = await adminClient();
    await expect(after.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await Promise.all([before.end(), after.end()]);
  });
});

describe('local Secrets Manager', () => {
  let secretsManager: LocalSecretsManager;
  let sdk: SecretsManagerClient;

  beforeEach(async () => {
    secretsManager = await startLocalSecretsManager();
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    sdk = new SecretsManagerClient({ endpoint: secretsManager.url, region: 'us-east-1', credentials, maxAttempts: 1 });
  });

  afterEach(async () => {
    sdk.destroy();
    await secretsManager.close();
  });

  it('serves the AWSCURRENT version to the real AWS SDK client', async () => {
    const previousVersionId = secretsManager.putSecretValue('app/db', '{"password":"old"}');
    secretsManager.putSecretValue('app/db', '{"password":"new"}');

    const current = await sdk.send(new GetSecretValueCommand({ SecretId: 'app/db' }));
    const previous = await sdk.send(new GetSecretValueCommand({ SecretId: 'app/db', VersionStage: 'AWSPREVIOUS' }));

    expect(current).toMatchObject({ SecretString: '{"password":"new"}', VersionStages: ['AWSCURRENT'] });
    expect(previous).toMatchObject({ VersionId: previousVersionId, SecretString: '{"password":"old"}' });
    expect(secretsManager.calls).toEqual([
      { secretId: 'app/db', versionStage: undefined, versionId: undefined, via: 'api' },
      { secretId: 'app/db', versionStage: 'AWSPREVIOUS', versionId: undefined, via: 'api' },
    ]);
  });

  it('fails the next call with a ThrottlingException that the SDK recognises', async () => {
    secretsManager.putSecretValue('app/db', '{"password":"secret"}');
    secretsManager.failNext(1, 'ThrottlingException');

    const failure = await sdk.send(new GetSecretValueCommand({ SecretId: 'app/db' })).catch((error: unknown) => error);
    const retry = await sdk.send(new GetSecretValueCommand({ SecretId: 'app/db' }));

    expect(failure).toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    expect(retry.SecretString).toBe('{"password":"secret"}');
  });

  it('answers the Lambda extension API only to callers with the session token', async () => {
    secretsManager.putSecretValue('app/db', '{"password":"secret"}');
    const url = `${secretsManager.url}/secretsmanager/get?secretId=app%2Fdb`;
    const token = { 'X-Aws-Parameters-Secrets-Token': secretsManager.extensionToken };

    const anonymous = await fetch(url);
    const authorised = await fetch(url, { headers: token });

    expect(anonymous.status).toBe(401);
    expect(await authorised.json()).toMatchObject({ Name: 'app/db', SecretString: '{"password":"secret"}' });
  });
});

describe('TCP proxy', () => {
  let proxy: TcpProxy;

  beforeEach(async () => {
    proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
  });

  afterEach(async () => {
    await proxy.close();
  });

  const proxied = (): ClientConfig => ({ host: '127.0.0.1', port: proxy.port, ssl: false });
  const throughProxy = (): Promise<Client> => connect(serverConfig(proxied()));

  it('makes an in-flight query fail when it resets every connection', async () => {
    const client = await throughProxy();
    const query = client.query('SELECT pg_sleep(5)');

    proxy.resetAll();

    await expect(query).rejects.toThrow();
    expect(proxy.connections).toBe(0);
    await client.end();
  });

  it('holds every byte back while blackholed and delivers them once the blackhole is lifted', async () => {
    const client = await throughProxy();
    proxy.blackhole(true);
    const query = client.query('SELECT 1 AS one');

    const outcome = await Promise.race([query.then(() => 'answered'), delay(300).then(() => 'stalled')]);
    proxy.blackhole(false);

    expect(outcome).toBe('stalled');
    await expect(query).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await client.end();
  });

  it('refuses connections while told to, and accepts them again afterwards', async () => {
    await proxy.refuse(true);

    const refused = throughProxy();

    await expect(refused).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await proxy.refuse(false);
    const client = await throughProxy();
    await client.end();
  });

  it('loses the reply to a COMMIT that a client hook forwards then drops, though the commit happens', async () => {
    const database = await createTestDatabase('proxy_commit');
    const client = await connect(serverConfig({ ...proxied(), database: database.name }));
    await client.query('CREATE TABLE marks (id int)');
    await client.query('BEGIN');
    await client.query('INSERT INTO marks VALUES (1)');
    proxy.onClientData((chunk) => (chunk.includes('COMMIT') ? 'forward-then-drop' : 'forward'));

    const commit = client.query('COMMIT');

    await expect(commit).rejects.toThrow();
    const admin = await adminClient(database.name);
    await untilSessionsEnd(admin, database.name); // the backend exits only after it has run the COMMIT it was sent
    const marks = await admin.query<{ count: number }>('SELECT count(*)::int AS count FROM marks');
    expect(marks.rows[0].count).toBe(1);
    await admin.end();
    await database.drop();
  });
});
