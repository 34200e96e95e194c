// clearCredentialsCache() with a reader endpoint and IAM authentication: the reader's own token is dropped too, so
// that the next reader connection signs a new one. No server is needed: the signer records the hosts it signs for.
import { createDatabase } from '../../src/shared/db';

afterEach(() => {
  jest.useRealTimers();
});

describe('clearCredentialsCache', () => {
  it("drops the reader's IAM token as well as the writer's", async () => {
    const signed: string[] = [];
    const db = createDatabase({
      auth: 'iam', host: '127.0.0.1', port: 1, user: 'app', readerHost: '127.0.0.2', readerPort: 1, ssl: 'require', logLevel: 'silent',
      iamTokenSigner: async ({ hostname }) => {
        signed.push(hostname);
        return `token-${signed.length}`;
      },
    });
    // Nothing listens on port 1: each read fails fast, after its token was signed.
    const read = () => db.query('SELECT 1', [], { readOnly: true, idempotent: true, deadline: Date.now() + 300 }).catch(() => undefined);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'queueMicrotask', 'hrtime', 'performance'] });
    await read();

    db.clearCredentialsCache();
    jest.setSystemTime(Date.now() + 11_000); // past the 10 s for which a failed reader is left alone
    await read();
    await db.close();

    expect(signed.filter((host) => host === '127.0.0.2')).toHaveLength(2);
  });
});
