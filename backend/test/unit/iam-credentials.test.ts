// IamCredentials with the default signer: @aws-sdk/rds-signer replaced by a module factory, so a bundle built
// without the signer (Node's own "Cannot find module" error) can be reproduced without building one.
import { classifyConnectFailure } from '../../src/shared/db/classify';
import { createDatabase } from '../../src/shared/db';
import { resolveDbConfig } from '../../src/shared/db/config';
import { CredentialsError } from '../../src/shared/db/errors';
import { IamCredentials } from '../../src/shared/db/iam-credentials';
import type { DbCredentials } from '../../src/shared/db/secret-format';

const MISSING_SIGNER = 'DB_AUTH=iam needs @aws-sdk/rds-signer, which this bundle does not contain; rebuild with `npm run build -- --iam` (or pass an iamTokenSigner).';

// What require('@aws-sdk/rds-signer') yields; reassigned per test (jest.resetModules makes the next require ask again).
let mockSignerModule: () => unknown;
jest.mock('@aws-sdk/rds-signer', () => mockSignerModule());

/** The errors Node throws for a package that is not there: CommonJS require() and ESM import(). */
function moduleNotFound(name: string, requireStack: string[] = ['/var/task/index.js']): Error {
  return Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n${requireStack.map((file) => `- ${file}`).join('\n')}`), { code: 'MODULE_NOT_FOUND', requireStack });
}
function packageNotFound(name: string): Error {
  return Object.assign(new Error(`Cannot find package '${name}' imported from /var/task/index.mjs`), { code: 'ERR_MODULE_NOT_FOUND' });
}

/** A stand-in for the package's Signer that records what it was built with. */
function signerModule(token: string, built: unknown[] = []) {
  return {
    Signer: class {
      constructor(options: unknown) {
        built.push(options);
      }
      getAuthToken(): Promise<string> {
        return Promise.resolve(token);
      }
    },
  };
}

const iamConfig = (options: Parameters<typeof resolveDbConfig>[0] = {}) =>
  resolveDbConfig({ auth: 'iam', host: 'db.example.com', user: 'app', ...options }, { AWS_REGION: 'eu-west-1' });

/** Awaits a promise that must reject and returns what it rejected with. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string; attempts?: number }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('Expected the promise to reject.');
}

beforeEach(() => {
  jest.resetModules();
});

describe('IamCredentials with the default signer', () => {
  it('signs with @aws-sdk/rds-signer for the configured user, host, port and region', async () => {
    const built: unknown[] = [];
    mockSignerModule = () => signerModule('signed-token', built);

    const credentials = await new IamCredentials(iamConfig({ port: 6432 })).get();

    expect(credentials).toMatchObject({ user: 'app', host: 'db.example.com', port: 6432, password: 'signed-token' });
    expect(built).toEqual([{ hostname: 'db.example.com', port: 6432, username: 'app', region: 'eu-west-1' }]);
  });

  it('says how to rebuild when the bundle does not contain @aws-sdk/rds-signer (require)', async () => {
    const notFound = moduleNotFound('@aws-sdk/rds-signer');
    mockSignerModule = () => {
      throw notFound;
    };

    const err = await rejectionOf(new IamCredentials(iamConfig()).get());

    expect(err).toBeInstanceOf(CredentialsError);
    expect(err.message).toBe(MISSING_SIGNER);
    expect(err.cause).toBe(notFound);
  });

  it('says the same for ESM resolution (ERR_MODULE_NOT_FOUND)', async () => {
    mockSignerModule = () => {
      throw packageNotFound('@aws-sdk/rds-signer');
    };

    const err = await rejectionOf(new IamCredentials(iamConfig()).get());

    expect(err.message).toBe(MISSING_SIGNER);
  });

  it('does not remember the failure: the next signing loads the package again', async () => {
    mockSignerModule = () => {
      throw moduleNotFound('@aws-sdk/rds-signer');
    };
    const provider = new IamCredentials(iamConfig());
    await rejectionOf(provider.get());
    jest.resetModules();
    mockSignerModule = () => signerModule('later-token');

    const credentials = await provider.get();

    expect(credentials.password).toBe('later-token');
  });

  it('keeps the signing message for a dependency missing inside the package (a broken install, not a build flag)', async () => {
    mockSignerModule = () => {
      throw moduleNotFound('@smithy/signature-v4', ['/var/task/node_modules/@aws-sdk/rds-signer/dist-cjs/index.js', '/var/task/index.js']);
    };

    const err = await rejectionOf(new IamCredentials(iamConfig()).get());

    expect(err).toBeInstanceOf(CredentialsError);
    expect(err.message).toBe("Signing an IAM authentication token for app@db.example.com failed (Error); check AWS_REGION and the role's rds-db:connect permission.");
  });

  it('keeps the signing message when an injected signer fails', async () => {
    mockSignerModule = () => {
      throw new Error('the default signer must not be loaded');
    };
    const iamTokenSigner = () => Promise.reject(moduleNotFound('@aws-sdk/rds-signer'));

    const err = await rejectionOf(new IamCredentials(iamConfig({ iamTokenSigner })).get());

    expect(err.message).toMatch(/^Signing an IAM authentication token for app@db\.example\.com failed/);
  });

  it('classifies the missing signer as not retryable', () => {
    const failure = classifyConnectFailure(new CredentialsError(MISSING_SIGNER));

    expect(failure.retry).toBe('never');
    expect(failure.error.retryable).toBe(false);
  });

  it('fails a query after one attempt, with the message, when the signer is missing', async () => {
    mockSignerModule = () => {
      throw moduleNotFound('@aws-sdk/rds-signer');
    };
    const db = createDatabase({ auth: 'iam', host: 'db.example.com', user: 'app', logLevel: 'silent' });

    try {
      const err = await rejectionOf(db.query('SELECT 1'));

      expect(err).toMatchObject({ name: 'CredentialsError', code: 'DB_CREDENTIALS', message: MISSING_SIGNER, attempts: 1 });
    } finally {
      await db.close();
    }
  });
});

describe('IamCredentials.clear()', () => {
  it('does not cache a token whose signing began before it, so the next call signs again', async () => {
    const tokens = ['token-1', 'token-2'];
    let finishFirst: () => void = () => undefined;
    const signer = jest.fn(() => {
      const token = tokens.shift()!;
      return token === 'token-1' ? new Promise<string>((resolve) => (finishFirst = () => resolve(token))) : Promise.resolve(token);
    });
    const provider = new IamCredentials(iamConfig({ iamTokenSigner: signer }));
    const before = provider.get();

    provider.clear();
    finishFirst();

    expect((await before).password).toBe('token-1');
    expect(provider.peek()).toBeUndefined();
    expect((await provider.get()).password).toBe('token-2');
    expect(signer).toHaveBeenCalledTimes(2);
  });
});

describe('IamCredentials.refreshAfterRejection()', () => {
  it('signs a new token for a rejected one, but keeps a newer token when an older one is reported rejected late', async () => {
    let signed = 0;
    const signer = jest.fn(async () => `token-${++signed}`);
    const provider = new IamCredentials(iamConfig({ iamTokenSigner: signer }));
    const first = await provider.get();

    const second = await provider.refreshAfterRejection(first);
    const late = await provider.refreshAfterRejection(first);

    expect(second.password).toBe('token-2');
    expect(late.password).toBe('token-2');
    expect(signer).toHaveBeenCalledTimes(2);
  });

  it('joins a signing already under way instead of starting another', async () => {
    let finish: () => void = () => undefined;
    let signed = 0;
    const signer = jest.fn(() => new Promise<string>((resolve) => (finish = () => resolve(`token-${++signed}`))));
    const provider = new IamCredentials(iamConfig({ iamTokenSigner: signer }));
    const signing = provider.get();

    const rejectedMeanwhile = provider.refreshAfterRejection({ password: 'token-0' } as DbCredentials);
    finish();

    expect((await signing).password).toBe('token-1');
    expect((await rejectedMeanwhile).password).toBe('token-1');
    expect(signer).toHaveBeenCalledTimes(1);
  });
});
