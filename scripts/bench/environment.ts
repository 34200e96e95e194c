// The one environment every benchmark runs against: an embedded PostgreSQL with TLS (verify-full against its
// generated CA, scram-sha-256) in a throwaway directory, and the local Secrets Manager endpoint holding the
// credentials in the RDS secret format, which the real AWS SDK reaches through AWS_ENDPOINT_URL_SECRETS_MANAGER.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { startLocalPostgres, type LocalPostgres } from '../lib/local-postgres';
import { startLocalSecretsManager, type LocalSecretsManager } from '../lib/local-secrets-manager';

/** A running benchmark environment. */
export interface BenchEnvironment {
  readonly postgres: LocalPostgres;
  readonly secrets: LocalSecretsManager;
  /** Variables that point the AWS SDK at the local endpoint with dummy credentials (already set in this process). */
  readonly awsEnv: Readonly<Record<string, string>>;
  /** Stores the superuser's credentials under `secretId`, as an RDS-managed secret with host, port and dbname. */
  putSecret(secretId: string): void;
  /** pg options for a direct connection verified against the local CA, as a hand-written handler would make. */
  pgConfig(overrides?: ClientConfig): ClientConfig;
  /** Stops both servers and removes the directory. */
  close(): Promise<void>;
}

/** Starts PostgreSQL and the Secrets Manager endpoint. */
export async function startBenchEnvironment(): Promise<BenchEnvironment> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-bench-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const [postgres, secrets] = await Promise.all([startLocalPostgres({ dir }), startLocalSecretsManager()]);
  const awsEnv = {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    // Lambda runs Node 22, where the SDK does not print this; on Node 20 it would only add noise to stderr.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, awsEnv);
  const secret = JSON.stringify({
    engine: 'postgres',
    host: postgres.host,
    port: postgres.port,
    username: postgres.user,
    password: postgres.password,
    dbname: postgres.database,
  });
  return {
    postgres,
    secrets,
    awsEnv,
    putSecret: (secretId) => void secrets.putSecretValue(secretId, secret),
    pgConfig: (overrides = {}) => ({
      host: postgres.host,
      port: postgres.port,
      user: postgres.user,
      password: postgres.password,
      database: postgres.database,
      ssl: { ca: postgres.caPem, rejectUnauthorized: true },
      ...overrides,
    }),
    async close() {
      await secrets.close();
      await postgres.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The server's version and the settings that shape the figures (durability, TLS). */
export async function describeServer(env: BenchEnvironment): Promise<string> {
  const client = new Client(env.pgConfig());
  await client.connect();
  try {
    const show = async (name: string) => (await client.query(`SHOW ${name}`)).rows[0][name] as string;
    const version = await show('server_version');
    // One statement at a time: pg 9 will not queue concurrent queries on one client.
    const settings: string[] = [];
    for (const name of ['fsync', 'synchronous_commit', 'ssl']) settings.push(`${name}=${await show(name)}`);
    return `${version} (${settings.join(', ')}; TLS verify-full against a generated CA, scram-sha-256)`;
  } finally {
    await client.end();
  }
}
