// Every built bundle, loaded by a fresh `node` process from a temporary directory (so nothing outside the bundle
// can be required), invoked with a v2 event against the local PostgreSQL: the artifacts we ship work on their own,
// with DATABASE_URL, and with credentials from a Secrets Manager endpoint through the bundled AWS SDK; the IAM token
// signer is in a bundle only when built with iam; pg's libpq binding and pgpass never are.
import { spawn } from 'node:child_process';
import { unzipSync } from 'fflate';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDatabase } from '../../src/shared/db';
import { createHttpEvent, type HttpEventOptions } from '../../../scripts/lib/http-event';
import { build } from 'esbuild';
import { buildHandlers, handlerBuildOptions, REPO_ROOT, type BundleReport } from '../../../scripts/lib/build-handlers';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../../scripts/lib/local-secrets-manager';
import { DEMO_TENANT_ID as TENANT, DEMO_WALLET_A_ID, DEMO_WALLET_B_ID, seedDemoData } from '../../../scripts/lib/seed';
import { createAppDatabase, type AppDatabase } from './fixtures/app-database';
import { testServer } from './support/postgres';
import { runScript, scriptEnv } from './support/run-script';

// Runs in the child: load the bundle as Lambda does (require + exports.handler), invoke once, print the result.
const RUNNER = `
const { handler } = require(process.argv[1]);
let input = '';
process.stdin.on('data', (chunk) => (input += chunk)).on('end', async () => {
  const started = Date.now();
  const context = { awsRequestId: 'bundle-test', functionName: 'bundle-test', getRemainingTimeInMillis: () => 15000 - (Date.now() - started) };
  const result = await handler(JSON.parse(input), context);
  process.stdout.write(JSON.stringify(result), () => process.exit(0));
});`;

let outDir: string;
let reports: BundleReport[];
let externalReports: BundleReport[];
let iamReports: BundleReport[];
let app: AppDatabase;

/** Invokes the bundle in a new process with only `env` (and PATH); resolves with its status, parsed body and stderr (the error log). */
function invokeBundle(file: string, request: HttpEventOptions, env: Record<string, string>): Promise<{ status: number; body: any; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', RUNNER, file], { cwd: os.tmpdir(), env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bundle process exited with ${code}: ${stderr}`));
      const result = JSON.parse(stdout);
      resolve({ status: result.statusCode, body: JSON.parse(result.body), log: stderr });
    });
    child.stdin.end(JSON.stringify(createHttpEvent(request)));
  });
}

const report = (name: string, from: BundleReport[] = reports) => from.find((r) => r.handler === name)!;
const bundle = (name: string, from: BundleReport[] = reports) => report(name, from).file;
/** The inputs esbuild bundled into `report`'s index.js, from its source map (the sources are listed even without their content). */
const bundledSources = (from: BundleReport): string[] => JSON.parse(fs.readFileSync(`${from.file}.map`, 'utf8')).sources;
const SIGNER_SOURCE = /node_modules\/@aws-sdk\/rds-signer\//;
const REQUIRE_SIGNER = 'require("@aws-sdk/rds-signer")';
const SIGNER_STAND_IN = 'left out of this bundle (build with --iam)';
const MISSING_SIGNER = 'DB_AUTH=iam needs @aws-sdk/rds-signer, which this bundle does not contain; rebuild with `npm run build -- --iam` (or pass an iamTokenSigner).';

beforeAll(async () => {
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bundles-'));
  reports = await buildHandlers({ outDir: path.join(outDir, 'bundled') });
  externalReports = await buildHandlers({ outDir: path.join(outDir, 'external'), externalSdk: true, handlers: ['health'] });
  iamReports = await buildHandlers({ outDir: path.join(outDir, 'iam'), iam: true, handlers: ['health'] });
  app = await createAppDatabase('bundles');
  const db = createDatabase({ databaseUrl: app.env.DATABASE_URL, sslCaFile: app.env.DB_SSL_CA_FILE });
  await seedDemoData(db);
  await db.close();
}, 120_000);

afterAll(async () => {
  await app?.drop();
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

describe('built bundles', () => {
  it('writes an index.js, a source map, the RDS CA set and a zip per handler', () => {
    expect(reports.map((r) => r.handler).sort()).toEqual(['create-user', 'get-user', 'health', 'list-users', 'transfer']);
    for (const report of reports) {
      expect(fs.readFileSync(report.file, 'utf8')).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
      expect(fs.existsSync(`${report.file}.map`)).toBe(true);
      const zipped = unzipSync(fs.readFileSync(report.zipFile));
      expect(Object.keys(zipped).sort()).toEqual(['index.js', 'index.js.map', 'rds-ca.pem']);
      expect(Buffer.from(zipped['rds-ca.pem']).toString('utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(120);
      expect(fs.readFileSync(report.file, 'utf8')).not.toMatch(/-----BEGIN CERTIFICATE-----\s*MII/); // no certificate inside the JavaScript
      expect(Buffer.from(zipped['index.js']).equals(fs.readFileSync(report.file))).toBe(true);
      expect(report.gzipBytes).toBeLessThan(report.bytes);
    }
  });

  it('builds byte-identical zips from the same sources', async () => {
    const [again] = await buildHandlers({ outDir: path.join(outDir, 'again'), handlers: ['health'] });

    expect(fs.readFileSync(again.zipFile).equals(fs.readFileSync(report('health').zipFile))).toBe(true);
  });

  it('leaves the AWS SDK out with externalSdk', () => {
    const code = fs.readFileSync(externalReports[0].file, 'utf8');

    expect(externalReports[0].bytes).toBeLessThan(report('health').bytes);
    // required, not import()ed: CommonJS resolution finds the runtime's SDK through NODE_PATH.
    expect(code.includes('require("@aws-sdk/client-secrets-manager")')).toBe(true);
    expect(code.includes('import("@aws-sdk')).toBe(false);
  });

  it('leaves @aws-sdk/rds-signer out by default and bundles it with iam', () => {
    const iam = iamReports[0];
    const health = report('health');

    for (const built of reports) {
      expect(bundledSources(built).filter((source) => SIGNER_SOURCE.test(source))).toEqual([]);
      // A stand-in that fails to load, not a require() that NODE_PATH could satisfy with an unpinned copy.
      expect(fs.readFileSync(built.file, 'utf8')).toContain(SIGNER_STAND_IN);
      expect(fs.readFileSync(built.file, 'utf8')).not.toContain(REQUIRE_SIGNER);
    }
    expect(bundledSources(iam).some((source) => SIGNER_SOURCE.test(source))).toBe(true);
    expect(fs.readFileSync(iam.file, 'utf8')).not.toContain(REQUIRE_SIGNER);
    expect(fs.readFileSync(iam.file, 'utf8')).not.toContain(SIGNER_STAND_IN);
    // The signer and the credential providers only it pulls in: about 23 KiB of minified code.
    expect(iam.bytes - health.bytes).toBeGreaterThan(15_000);
  });

  it('leaves the signer to the runtime with externalSdk, as the rest of @aws-sdk/*', () => {
    expect(fs.readFileSync(externalReports[0].file, 'utf8')).toContain(REQUIRE_SIGNER);
  });

  it('serves every route from a fresh process with DATABASE_URL', async () => {
    const env = app.env as Record<string, string>;
    const users = `/tenants/${TENANT}/users`;

    const health = await invokeBundle(bundle('health'), { method: 'GET', path: '/health' }, env);
    const created = await invokeBundle(bundle('create-user'), { method: 'POST', path: users, body: { email: 'b@example.com', name: 'B' } }, env);
    const duplicate = await invokeBundle(bundle('create-user'), { method: 'POST', path: users, body: { email: 'b@example.com', name: 'B' } }, env);
    const listed = await invokeBundle(bundle('list-users'), { method: 'GET', path: users }, env);
    const got = await invokeBundle(bundle('get-user'), { method: 'GET', path: `${users}/${created.body.user.id}` }, env);
    const bad = await invokeBundle(bundle('get-user'), { method: 'GET', path: `${users}/nope` }, env);
    const moved = await invokeBundle(bundle('transfer'), { method: 'POST', path: `/tenants/${TENANT}/transfers`, body: { requestId: 'c0000000-0000-4000-8000-000000000001', fromWalletId: DEMO_WALLET_A_ID, toWalletId: DEMO_WALLET_B_ID, amountCents: 100 } }, env);

    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(created).toMatchObject({ status: 201, body: { user: { email: 'b@example.com', tenantId: TENANT } } });
    // The minified bundle still maps SQLSTATE 23505 to UniqueViolationError and the constraint to a 409.
    expect(duplicate).toMatchObject({ status: 409, body: { error: { code: 'EMAIL_TAKEN' } } });
    expect(listed).toMatchObject({ status: 200, body: { users: [created.body.user] } });
    expect(got).toMatchObject({ status: 200, body: { user: created.body.user } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
    expect(moved).toMatchObject({ status: 201, body: { transfer: { amountCents: 100 } } });
  });

  it('serves from a bundle built with externalSdk when no secret is needed', async () => {
    const response = await invokeBundle(bundle('health', externalReports), { method: 'GET', path: '/health' }, app.env as Record<string, string>);

    expect(response.status).toBe(200);
  });

  describe('with DB_AUTH=iam', () => {
    const iamEnv = (): Record<string, string> => {
      const server = testServer();
      return {
        DB_AUTH: 'iam', DB_HOST: server.host, DB_PORT: String(server.port), DB_USER: 'iam_bundle_user', DB_NAME: app.name,
        DB_SSL_CA_FILE: server.caFile, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
      };
    };

    it('fails at once, saying to rebuild with --iam, from a bundle built without the signer', async () => {
      // Even where NODE_PATH offers a copy of the package (here the repository's), the bundle does not take it.
      const response = await invokeBundle(bundle('health'), { method: 'GET', path: '/health' }, { ...iamEnv(), NODE_PATH: path.join(REPO_ROOT, 'node_modules') });

      expect(response.status).toBe(500);
      const logged = JSON.parse(response.log.trim());
      expect(logged).toMatchObject({ level: 'ERROR', error: 'CredentialsError', code: 'DB_CREDENTIALS', message: MISSING_SIGNER, attempts: 1 });
    });

    it('signs a token with the bundled signer from a bundle built with iam', async () => {
      const response = await invokeBundle(bundle('health', iamReports), { method: 'GET', path: '/health' }, iamEnv());

      // The server has no such IAM user, so it refuses the signed token: signing itself worked.
      expect(response.status).toBe(503);
      expect(response.log).toContain('"error":"AuthenticationError"');
      expect(response.log).not.toContain('@aws-sdk/rds-signer');
    });
  });

  describe("pg's libpq binding and ~/.pgpass fallback", () => {
    // A script that loads pg as a handler would and connects once without a password, as pg's fallbacks expect.
    const PROBE = `
      const pg = require('pg');
      const client = new pg.Client({ host: process.env.PROBE_HOST, port: Number(process.env.PROBE_PORT), user: process.env.PROBE_USER,
        database: 'postgres', ssl: { ca: require('fs').readFileSync(process.env.PROBE_CA, 'utf8') } });
      client.connect().then(() => client.end().then(() => ({ connected: true })), (err) => ({ error: err.message }))
        // pg leaves the socket open after a failed authentication: the probe exits once it has reported.
        .then((outcome) => process.stdout.write(JSON.stringify({ native: pg.native, ...outcome }), () => process.exit(0)));`;
    let probes: { ours: string; plain: string };
    let passFile: string;

    beforeAll(async () => {
      const server = testServer();
      const probe = async (plain: boolean) => {
        const file = path.join(outDir, 'pg-probe', plain ? 'plain.js' : 'ours.js');
        await build({ ...handlerBuildOptions([], { plain }), stdin: { contents: PROBE, resolveDir: REPO_ROOT }, outfile: file });
        return file;
      };
      probes = { ours: await probe(false), plain: await probe(true) };
      passFile = path.join(outDir, 'pgpass');
      fs.writeFileSync(passFile, `${server.host}:${server.port}:*:${server.user}:${server.password}\n`, { mode: 0o600 });
    });

    /** Runs a probe bundle in a fresh process with only the connection facts, `env` and PATH. */
    const runProbe = (file: string, env: Record<string, string> = {}) => {
      const server = testServer();
      return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [file], {
          cwd: os.tmpdir(),
          env: { PATH: process.env.PATH ?? '', PROBE_HOST: server.host, PROBE_PORT: String(server.port), PROBE_USER: server.user, PROBE_CA: server.caFile, ...env },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
      });
    };

    it('leaves both out of every handler bundle', () => {
      for (const built of [...reports, ...externalReports, ...iamReports]) {
        expect(bundledSources(built).filter((source) => /node_modules\/(pg\/lib\/native|pgpass|split2)\//.test(source))).toEqual([]);
        expect(fs.readFileSync(built.file, 'utf8')).toContain("pg's libpq binding (pg.native) is left out of this bundle");
      }
    });

    it('behaves as pg does without pg-native and without a ~/.pgpass file', async () => {
      const [ours, plain] = await Promise.all([runProbe(probes.ours), runProbe(probes.plain)]);

      expect(JSON.parse(ours.stdout)).toEqual({ native: null, error: expect.stringContaining('client password must be a string') });
      expect(JSON.parse(ours.stdout)).toEqual(JSON.parse(plain.stdout));
    });

    it('fails to load under NODE_PG_FORCE_NATIVE as pg does without pg-native', async () => {
      const [ours, plain] = await Promise.all([runProbe(probes.ours, { NODE_PG_FORCE_NATIVE: '1' }), runProbe(probes.plain, { NODE_PG_FORCE_NATIVE: '1' })]);

      expect(plain).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining("Cannot find module 'pg-native'") });
      expect(ours).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining("Cannot find module 'pg-native'") });
      expect(ours.stderr).toContain('left out of this bundle');
    });

    it('does not read PGPASSFILE, which a plain build of pg does', async () => {
      const [ours, plain] = await Promise.all([runProbe(probes.ours, { PGPASSFILE: passFile }), runProbe(probes.plain, { PGPASSFILE: passFile })]);

      expect(JSON.parse(plain.stdout)).toMatchObject({ connected: true });
      expect(JSON.parse(ours.stdout)).toMatchObject({ error: expect.stringContaining('client password must be a string') });
    });
  });

  describe('npm run build', () => {
    it('builds with --iam and reports that the signer is bundled', async () => {
      const dir = path.join(outDir, 'cli');

      const { code, output } = await runScript('build.ts', ['--iam', '--outdir', dir, 'health'], scriptEnv());

      expect(code).toBe(0);
      expect(output).toContain('(AWS SDK and IAM token signer bundled)');
      expect(bundledSources({ file: path.join(dir, 'health/index.js') } as BundleReport).some((source) => SIGNER_SOURCE.test(source))).toBe(true);
    });

    it('refuses an unknown flag, naming the ones it knows', async () => {
      const { code, output } = await runScript('build.ts', ['--iam-signer', 'health'], scriptEnv());

      expect(code).toBe(1);
      expect(output).toContain('Build failed: Unknown argument "--iam-signer"; expected --iam, --external-sdk, --outdir or handler names.');
    });
  });

  describe('with credentials from Secrets Manager', () => {
    let secrets: LocalSecretsManager;
    beforeAll(async () => {
      secrets = await startLocalSecretsManager();
    });
    afterAll(() => secrets?.close());

    it('fetches them with the bundled SDK and connects', async () => {
      const server = testServer();
      secrets.putSecretValue('app/db', JSON.stringify({ engine: 'postgres', username: server.user, password: server.password, host: server.host, port: server.port, dbname: app.name }));
      const env = {
        DB_SECRET_ID: 'app/db', DB_SSL_CA_FILE: server.caFile, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
      };

      const response = await invokeBundle(bundle('list-users'), { method: 'GET', path: `/tenants/${TENANT}/users` }, env);

      expect(response.status).toBe(200);
      expect(secrets.calls).toEqual([expect.objectContaining({ secretId: 'app/db', via: 'api' })]);
    });

    it('loads the SDK through NODE_PATH, as from the Lambda runtime, when built with externalSdk', async () => {
      const server = testServer();
      secrets.putSecretValue('app/db-external', JSON.stringify({ username: server.user, password: server.password, host: server.host, port: server.port, dbname: app.name }));
      const env = {
        DB_SECRET_ID: 'app/db-external', DB_SSL_CA_FILE: server.caFile, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', NODE_PATH: path.join(REPO_ROOT, 'node_modules'),
      };

      const response = await invokeBundle(bundle('health', externalReports), { method: 'GET', path: '/health' }, env);

      expect(response.status).toBe(200);
    });
  });
});
