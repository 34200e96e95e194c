// The minimal hand-written handler a user would otherwise write: GetSecretValue once per sandbox (the promise is
// cached, so concurrent cold calls share one fetch, but it never refreshes), a raw pg Pool with TLS verified
// against a CA file, one `SELECT 1`. The baseline of the cold-start and bundle-size targets.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';

const secrets = new SecretsManagerClient({});
let pool: Promise<Pool> | undefined;

async function createPool(): Promise<Pool> {
  const output = await secrets.send(new GetSecretValueCommand({ SecretId: process.env.DB_SECRET_ID }));
  const secret = JSON.parse(output.SecretString ?? '{}');
  return new Pool({
    host: secret.host,
    port: Number(secret.port),
    user: secret.username,
    password: secret.password,
    database: secret.dbname,
    ssl: { ca: readFileSync(process.env.DB_SSL_CA_FILE as string, 'utf8'), rejectUnauthorized: true },
    max: 2,
  });
}

/** The Lambda entry point. */
export async function handler(): Promise<{ statusCode: number; body: string }> {
  pool ??= createPool();
  const { rows } = await (await pool).query('SELECT 1 AS ok');
  return { statusCode: 200, body: JSON.stringify(rows[0]) };
}
