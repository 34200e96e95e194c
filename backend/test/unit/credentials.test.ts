import { inspect } from 'node:util';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { DbOptions, resolveDbConfig } from '../../src/shared/db/config';
import { createCredentialsProvider, SecretsManagerCredentials, UrlCredentials } from '../../src/shared/db/credentials';
import { CredentialsError } from '../../src/shared/db/errors';
import { createLogger, DbLogger } from '../../src/shared/db/log';

const secretsManager = mockClient(SecretsManagerClient);

const TTL_MILLIS = 300_000;
const GRACE_MILLIS = 900_000;

function secretString(password: string): string {
  return JSON.stringify({ engine: 'postgres', host: 'db.local', port: 5432, username: 'app', password, dbname: 'app' });
}

/** Awaits a promise that must reject and returns what it rejected with. */
async function rejectionOf(promise: Promise<unknown>): Promise<CredentialsError> {
  try {
    await promise;
  } catch (err) {
    return err as CredentialsError;
  }
  throw new Error('Expected the promise to reject.');
}

function sdkError(name: string, message = 'failed'): Error {
  return Object.assign(new Error(message), { name, $metadata: {} });
}

let clock: number;
let fakeLogger: jest.Mocked<Required<DbLogger>>;

/** A provider over a mocked Secrets Manager, a settable clock and a fixed jitter. */
function createProvider(options: { random?: number; config?: DbOptions } = {}): SecretsManagerCredentials {
  const config = resolveDbConfig({ secretId: 'app/db', secretsManagerClient: new SecretsManagerClient({ region: 'eu-west-1' }), ...options.config }, {});
  return new SecretsManagerCredentials(config, createLogger('debug', fakeLogger), () => clock, () => options.random ?? 0);
}

function fetchCount(stage?: 'AWSCURRENT' | 'AWSPENDING'): number {
  return secretsManager.commandCalls(GetSecretValueCommand, stage ? { VersionStage: stage } : undefined).length;
}

beforeEach(() => {
  secretsManager.reset();
  clock = 1_000_000;
  fakeLogger = { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
});

describe('SecretsManagerCredentials', () => {
  it('reads the AWSCURRENT version of the configured secret', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: secretString('pw-1') });
    const provider = createProvider();

    const credentials = await provider.get();

    expect(credentials).toMatchObject({ user: 'app', host: 'db.local', port: 5432, database: 'app' });
    expect(credentials.password).toBe('pw-1');
    expect(secretsManager.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: 'app/db', VersionStage: 'AWSCURRENT' });
  });

  it('creates its own client when none is injected', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: secretString('pw-1') });
    const config = resolveDbConfig({ secretId: 'app/db' }, {});
    const provider = new SecretsManagerCredentials(config, createLogger('debug', fakeLogger));

    const credentials = await provider.get();

    expect(credentials.password).toBe('pw-1');
    expect(fetchCount()).toBe(1);
  });

  it('makes exactly one GetSecretValue call for 50 concurrent cold calls', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: secretString('pw-1') });
    const provider = createProvider();

    const results = await Promise.all(Array.from({ length: 50 }, () => provider.get()));

    expect(fetchCount()).toBe(1);
    expect(new Set(results).size).toBe(1);
  });

  it('serves the cached secret until the TTL expires, then fetches again', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).resolves({ SecretString: secretString('pw-2') });
    const provider = createProvider({ random: 0 });
    const start = clock;
    await provider.get();

    clock = start + TTL_MILLIS - 1;
    const cached = await provider.get();
    clock = start + TTL_MILLIS;
    const refreshed = await provider.get();

    expect(cached.password).toBe('pw-1');
    expect(refreshed.password).toBe('pw-2');
    expect(fetchCount()).toBe(2);
  });

  it('shortens the TTL by at most 10 % of jitter', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: secretString('pw-1') });
    const shortest = createProvider({ random: 0.999_999 });
    const longest = createProvider({ random: 0 });
    const start = clock;
    await shortest.get();
    await longest.get();

    clock = start + 0.9 * TTL_MILLIS;
    const shortestAtNinetyPercent = shortest.peek();
    clock = start + 0.9 * TTL_MILLIS + 1;
    const shortestAfterNinetyPercent = shortest.peek();
    clock = start + TTL_MILLIS - 1;
    const longestJustBeforeTtl = longest.peek();
    clock = start + TTL_MILLIS;
    const longestAtTtl = longest.peek();

    expect(shortestAtNinetyPercent).toBeDefined();
    expect(shortestAfterNinetyPercent).toBeUndefined();
    expect(longestJustBeforeTtl).toBeDefined();
    expect(longestAtTtl).toBeUndefined();
  });

  it('does not cache a rejected fetch', async () => {
    secretsManager.on(GetSecretValueCommand).rejectsOnce(sdkError('InternalServiceError')).resolves({ SecretString: secretString('pw-1') });
    const provider = createProvider();

    await expect(provider.get()).rejects.toBeInstanceOf(CredentialsError);
    const credentials = await provider.get();

    expect(credentials.password).toBe('pw-1');
    expect(fetchCount()).toBe(2);
  });

  it('serves the last good secret with a warning while Secrets Manager fails within the grace period', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).rejects(sdkError('InternalServiceError'));
    const provider = createProvider();
    const start = clock;
    await provider.get();

    clock = start + TTL_MILLIS + 1;
    const stale = await provider.get();

    expect(stale.password).toBe('pw-1');
    expect(fetchCount()).toBe(2);
    expect(fakeLogger.warn).toHaveBeenCalledWith(expect.stringMatching(/last good/), expect.objectContaining({ credentialsSource: 'secret app/db' }));
    expect(JSON.stringify(fakeLogger.warn.mock.calls)).not.toContain('pw-1');
  });

  it('says in its warning why the refresh failed, by the error name the SDK gave', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).rejects(sdkError('ThrottlingException'));
    const provider = createProvider();
    await provider.get();

    clock += TTL_MILLIS + 1;
    await provider.get();

    expect(fakeLogger.warn).toHaveBeenCalledWith(expect.stringMatching(/last good/), expect.objectContaining({ error: expect.stringContaining('ThrottlingException') }));
  });

  it('fails once the grace period is over', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).rejects(sdkError('InternalServiceError'));
    const provider = createProvider();
    const start = clock;
    await provider.get();

    clock = start + TTL_MILLIS + GRACE_MILLIS;

    await expect(provider.get()).rejects.toBeInstanceOf(CredentialsError);
  });

  it('fails a refresh after the jittered expiry when the grace period is zero', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).rejects(sdkError('InternalServiceError'));
    const provider = createProvider({ random: 0.999_999, config: { credentialsGraceMillis: 0 } });
    const start = clock;
    await provider.get();

    clock = start + 0.9 * TTL_MILLIS + 1;

    await expect(provider.get()).rejects.toBeInstanceOf(CredentialsError);
    expect(fakeLogger.warn).not.toHaveBeenCalled();
  });

  it('stops serving the last good secret when the grace period ends, even before the next retry is due', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('pw-1') }).rejects(sdkError('InternalServiceError'));
    const provider = createProvider({ random: 0 });
    const start = clock;
    await provider.get();

    clock = start + TTL_MILLIS + GRACE_MILLIS - 1000;
    const stale = await provider.get();
    clock = start + TTL_MILLIS + GRACE_MILLIS;
    const peekedAtGraceEnd = provider.peek();

    expect(stale.password).toBe('pw-1');
    expect(peekedAtGraceEnd).toBeUndefined();
    await expect(provider.get()).rejects.toBeInstanceOf(CredentialsError);
    expect(fetchCount()).toBe(3);
  });

  it('maps a ThrottlingException to a CredentialsError naming the secret id', async () => {
    secretsManager.on(GetSecretValueCommand).rejects(sdkError('ThrottlingException', 'Rate exceeded'));
    const provider = createProvider();

    const error = await rejectionOf(provider.get());

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toContain('app/db');
    expect(error.message).toContain('ThrottlingException');
    expect((error.cause as Error).name).toBe('ThrottlingException');
  });

  it('explains which permission is missing after an AccessDeniedException', async () => {
    secretsManager.on(GetSecretValueCommand).rejects(sdkError('AccessDeniedException', 'not authorized'));
    const provider = createProvider();

    const error = await rejectionOf(provider.get());

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toContain('secretsmanager:GetSecretValue');
    expect(error.message).toContain('app/db');
  });

  it('reports a malformed secret without revealing it', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '{"username":"u","password":"hunter2-Secret!"' });
    const provider = createProvider();

    const error = await rejectionOf(provider.get());

    expect(error).toBeInstanceOf(CredentialsError);
    expect(`${error.message}\n${error.stack}\n${inspect(error)}`).not.toContain('hunter2');
  });

  describe('refreshAfterRejection', () => {
    it('fetches the secret again and returns the new password', async () => {
      secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('old') }).resolves({ SecretString: secretString('new') });
      const provider = createProvider();
      const rejected = await provider.get();

      const refreshed = await provider.refreshAfterRejection(rejected);

      expect(refreshed.password).toBe('new');
      expect(fetchCount('AWSPENDING')).toBe(0);
    });

    it('uses AWSPENDING while AWSCURRENT still returns the rejected password', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolves({ SecretString: secretString('rotated') });
      const provider = createProvider();
      const rejected = await provider.get();

      const refreshed = await provider.refreshAfterRejection(rejected);

      expect(refreshed.password).toBe('rotated');
      expect(refreshed.source).toMatch(/AWSPENDING/);
      expect(fetchCount('AWSPENDING')).toBe(1);
      expect((await provider.get()).password).toBe('rotated');
    });

    it('trusts an AWSPENDING version for at most a minute', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolves({ SecretString: secretString('rotated') });
      // No jitter: the entry lives its full TTL, so it is fresh until the last millisecond of the minute.
      const provider = createProvider({ random: 0 });
      const rejected = await provider.get();
      await provider.refreshAfterRejection(rejected);
      const pendingAt = clock;

      clock = pendingAt + 59_999;
      const justBefore = provider.peek();
      clock = pendingAt + 60_000;
      const atAMinute = provider.peek();

      expect(justBefore?.password).toBe('rotated');
      expect(atAMinute).toBeUndefined();
    });

    it('serves an AWSPENDING version through an outage only for the grace period counted from its own minute', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolvesOnce({ SecretString: secretString('old') }).resolvesOnce({ SecretString: secretString('old') }).rejects(sdkError('InternalServiceError'));
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolves({ SecretString: secretString('rotated') });
      const provider = createProvider();
      const rejected = await provider.get();
      await provider.refreshAfterRejection(rejected);
      const pendingAt = clock;

      clock = pendingAt + 60_000 + 1;
      const stillServed = (await provider.get()).password;
      clock = pendingAt + 60_000 + GRACE_MILLIS + 1;

      expect(stillServed).toBe('rotated');
      await expect(provider.get()).rejects.toBeInstanceOf(CredentialsError);
    });

    it('keeps the AWSCURRENT password when there is no AWSPENDING version', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).rejects(sdkError('ResourceNotFoundException'));
      const provider = createProvider();
      const rejected = await provider.get();

      const refreshed = await provider.refreshAfterRejection(rejected);

      expect(refreshed.password).toBe('old');
    });

    it('reads AWSPENDING after joining an ordinary refresh that brings the rejected password again', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolves({ SecretString: secretString('rotated') });
      const provider = createProvider();
      const rejected = await provider.get();
      clock += TTL_MILLIS;
      const expiredRefresh = provider.get();

      const refreshed = await provider.refreshAfterRejection(rejected);

      expect((await expiredRefresh).password).toBe('old');
      expect(refreshed.password).toBe('rotated');
      expect(fetchCount('AWSPENDING')).toBe(1);
      expect((await provider.get()).password).toBe('rotated');
    });

    it('passes on the failure of the refresh it joins', async () => {
      secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('old') }).rejects(sdkError('InternalServiceError'));
      const provider = createProvider({ config: { credentialsGraceMillis: 0 } });
      const rejected = await provider.get();
      clock += TTL_MILLIS;
      const expiredRefresh = provider.get();

      const error = await rejectionOf(provider.refreshAfterRejection(rejected));

      expect(error).toBeInstanceOf(CredentialsError);
      await expect(expiredRefresh).rejects.toBe(error);
      expect(fetchCount()).toBe(2);
    });

    it('caches the rejected password for only 5 seconds when the AWSPENDING read fails', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).rejects(sdkError('ThrottlingException'));
      const provider = createProvider();
      const rejected = await provider.get();

      const refreshed = await provider.refreshAfterRejection(rejected);
      clock += 5000;
      await provider.get();

      expect(refreshed.password).toBe('old');
      expect(fetchCount('AWSCURRENT')).toBe(3);
    });

    it('keeps a cached AWSPENDING version when a late rejection of the old password cannot read AWSPENDING', async () => {
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({ SecretString: secretString('old') });
      secretsManager.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolvesOnce({ SecretString: secretString('rotated') }).rejects(sdkError('ThrottlingException'));
      const provider = createProvider();
      const rejected = await provider.get();
      await provider.refreshAfterRejection(rejected);
      clock += 1000;

      const refreshed = await provider.refreshAfterRejection(rejected);

      expect(refreshed.password).toBe('rotated');
      expect(fetchCount('AWSPENDING')).toBe(2);
      expect((await provider.get()).password).toBe('rotated');
    });

    it('makes one fetch for concurrent rejections', async () => {
      secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('old') }).resolves({ SecretString: secretString('new') });
      const provider = createProvider();
      const rejected = await provider.get();

      await Promise.all(Array.from({ length: 10 }, () => provider.refreshAfterRejection(rejected)));

      expect(fetchCount()).toBe(2);
    });

    it('forces at most one refresh per second', async () => {
      secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: secretString('old') }).resolves({ SecretString: secretString('new') });
      const provider = createProvider();
      const rejected = await provider.get();

      clock += 10;
      await provider.refreshAfterRejection(rejected);
      clock += 500;
      await provider.refreshAfterRejection(rejected);
      const withinOneSecond = fetchCount();
      clock += 1000;
      await provider.refreshAfterRejection(rejected);

      expect(withinOneSecond).toBe(2);
      expect(fetchCount()).toBe(3);
    });
  });

  it('fetches again after clear()', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: secretString('pw-1') });
    const provider = createProvider();
    await provider.get();

    provider.clear();
    await provider.get();

    expect(fetchCount()).toBe(2);
  });
});

it('does not cache what a fetch begun before clear() brings, so the next call fetches again', async () => {
  let answer: (value: { SecretString: string }) => void = () => undefined;
  secretsManager.on(GetSecretValueCommand).callsFakeOnce(() => new Promise((resolve) => (answer = resolve))).resolves({ SecretString: secretString('pw-2') });
  const provider = createProvider();
  const before = provider.get();
  await new Promise((resolve) => setImmediate(resolve));

  provider.clear();
  answer({ SecretString: secretString('pw-1') });

  expect((await before).password).toBe('pw-1');
  expect(provider.peek()).toBeUndefined();
  expect((await provider.get()).password).toBe('pw-2');
});

describe('UrlCredentials', () => {
  it('serves the credentials of DATABASE_URL', async () => {
    const config = resolveDbConfig({}, { DATABASE_URL: `postgres://app:${encodeURIComponent('p@ss word')}@db.local:6543/orders` });
    const provider = new UrlCredentials(config);

    const credentials = await provider.get();

    expect(credentials).toMatchObject({ user: 'app', host: 'db.local', port: 6543, database: 'orders', source: 'DATABASE_URL' });
    expect(credentials.password).toBe('p@ss word');
    expect(JSON.stringify(credentials)).not.toContain('p@ss word');
  });

  it('lets DB_HOST, DB_PORT and DB_NAME override the URL', async () => {
    const config = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local:6543/orders', DB_HOST: 'proxy.local', DB_PORT: '6432', DB_NAME: 'reports' });
    const provider = new UrlCredentials(config);

    const credentials = await provider.get();

    expect(credentials).toMatchObject({ host: 'proxy.local', port: 6432, database: 'reports' });
  });

  it('returns the same credentials after a rejection, since there is nothing to refresh', async () => {
    const provider = new UrlCredentials(resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local/app' }));
    const credentials = await provider.get();

    const refreshed = await provider.refreshAfterRejection();

    expect(refreshed).toBe(credentials);
  });
});

describe('createCredentialsProvider', () => {
  it('reads a secret when a secret id is configured and DATABASE_URL otherwise', () => {
    const log = createLogger('silent');

    const fromSecret = createCredentialsProvider(resolveDbConfig({ secretId: 'app/db' }, {}), log);
    const fromUrl = createCredentialsProvider(resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local/app' }), log);

    expect(fromSecret).toBeInstanceOf(SecretsManagerCredentials);
    expect(fromSecret.description).toBe('secret app/db');
    expect(fromUrl).toBeInstanceOf(UrlCredentials);
    expect(fromUrl.description).toBe('DATABASE_URL');
  });
});
