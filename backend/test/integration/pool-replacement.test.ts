// Pool replacement when the secret names another user (alternating-users rotation): the replaced pool drains in the
// background, and any connection it still opens for the callers queued on it must log in as the user it was made
// for, with that user's password, not the password of the user the secret names now.
import crypto from 'node:crypto';
import type { LocalSecretsManager } from '../../../scripts/lib/local-secrets-manager';
import { startSdkSecretsManager } from './support/sdk-secrets-manager';
import { createDatabase, Database, RetryEvent } from '../../src/shared/db';
import { adminClient, createRole, createTestDatabase, terminateBackends, testServer } from './support/postgres';

const server = testServer();
const suffix = crypto.randomBytes(4).toString('hex');
const USER_A = `pool_repl_a_${suffix}`;
const USER_B = `pool_repl_b_${suffix}`;
const PASSWORD_A = 'password-of-user-a';
const PASSWORD_B = 'password-of-user-b';
const SECRET_ID = 'pool-replacement/db';

let secrets: LocalSecretsManager;
let dbName: string;
let dropDatabase: () => Promise<void>;
const open: Database[] = [];

function secretFor(user: string, password: string): string {
  return JSON.stringify({ engine: 'postgres', host: server.host, port: server.port, username: user, password, dbname: dbName });
}

beforeAll(async () => {
  ({ name: dbName, drop: dropDatabase } = await createTestDatabase('pool_replacement'));
  await createRole(USER_A, PASSWORD_A);
  await createRole(USER_B, PASSWORD_B);
  secrets = await startSdkSecretsManager();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

afterAll(async () => {
  await secrets?.close();
  await terminateBackends({ database: dbName });
  await dropDatabase?.();
  const admin = await adminClient();
  try {
    for (const role of [USER_A, USER_B]) await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`);
  } finally {
    await admin.end();
  }
});

describe('a pool replaced because the secret names another user', () => {
  it('opens the new connections of its queued callers as its own user, with that user\'s password', async () => {
    secrets.putSecretValue(SECRET_ID, secretFor(USER_A, PASSWORD_A));
    const retries: RetryEvent[] = [];
    const db = createDatabase({ secretId: SECRET_ID, sslCaFile: server.caFile, logLevel: 'silent', poolMax: 1, hooks: { onRetry: (event) => retries.push(event) } });
    open.push(db);
    // The old pool's only client is checked out, and a caller queues behind it on that pool.
    const held = await db.getClient();
    const queued = db.query<{ u: string }>('SELECT current_user AS u');
    await new Promise((resolve) => setTimeout(resolve, 50));

    // The secret now names user B: the next call replaces the pool, and the old one drains in the background.
    secrets.putSecretValue(SECRET_ID, secretFor(USER_B, PASSWORD_B));
    db.clearCredentialsCache();
    const afterSwitch = await db.query<{ u: string }>('SELECT current_user AS u');
    // Destroyed on release, so the old pool opens a new connection for the caller queued on it.
    held.release(new Error('discard this connection'));
    const outcome = await queued.then((result) => result.rows[0].u, (e: unknown) => e);

    expect(afterSwitch.rows[0].u).toBe(USER_B);
    expect(outcome).toBe(USER_A);
    expect(retries).toEqual([]);
  });
});
