// `npm run invoke -- <handler> <event.json>` as a child process: one invocation of a handler's source with a fake
// Lambda context against the shared test server, its response printed as JSON; a bad handler name is refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRole, createTestDatabase, testServer, type TestDatabase } from './support/postgres';
import { REPO_ROOT, runScript, scriptEnv } from './support/run-script';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('invoke');
  await createRole('invoke_user', 'invoke-pass');
});

afterAll(async () => {
  await database?.drop();
});

describe('npm run invoke', () => {
  it('invokes the health handler once with the sample event and prints its response', async () => {
    const { host, port, caFile } = testServer();
    const env = { DATABASE_URL: `postgres://invoke_user:invoke-pass@${host}:${port}/${database.name}`, DB_SSL_CA_FILE: caFile };

    const { code, output } = await runScript('invoke.ts', ['health', path.join(REPO_ROOT, 'backend/events/health.json')], scriptEnv(env));

    expect(code).toBe(0);
    expect(output).toMatch(/"statusCode": 200/);
    expect(output).toMatch(/health: 200 in \d+ ms \(request [\w-]+\)/);
  });

  it('refuses an unknown handler with its usage line and exit code 1', async () => {
    const { code, output } = await runScript('invoke.ts', ['no-such-handler', 'event.json'], scriptEnv());

    expect(code).toBe(1);
    expect(output).toContain('Invoke failed: Unknown handler "no-such-handler". Usage: npm run invoke -- <handler> <event.json>');
  });

  it('names an event file it cannot read or parse', async () => {
    const missing = await runScript('invoke.ts', ['health', 'no-such-event.json'], scriptEnv());
    const badJson = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'invoke-')), 'bad.json');
    fs.writeFileSync(badJson, '{"version": ');
    const malformed = await runScript('invoke.ts', ['health', badJson], scriptEnv());

    expect(missing.output).toContain('Invoke failed: The event file no-such-event.json could not be read (ENOENT).');
    expect(malformed.output).toContain(`Invoke failed: The event file ${badJson} is not valid JSON: `);
    expect([missing.code, malformed.code]).toEqual([1, 1]);
  });

  it.each([
    [['--bundel'], 'Unknown argument "--bundel"'],
    [['--timeout', '5s'], 'Expected --timeout to be a number of milliseconds from 1 to 900000'],
    [['--timeout'], '--timeout needs a value'],
  ])('refuses %j before invoking anything, with exit code 1', async (extra, message) => {
    const { code, output } = await runScript('invoke.ts', ['health', path.join(REPO_ROOT, 'backend/events/health.json'), ...extra], scriptEnv());

    expect(code).toBe(1);
    expect(output).toContain(`Invoke failed: ${message}`);
  });
});
