// The minimal handler again, with the secret read through Powertools' getSecret on every invocation (its cache
// answers until maxAge, 5 s by default or POWERTOOLS_PARAMETERS_MAX_AGE) and the pool created on the first one.
// A peer of the cold-start, bundle-size and Secrets Manager call-count benchmarks.
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';

interface RdsSecret {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly dbname: string;
}

let pool: Pool | undefined;

/** The Lambda entry point. */
export async function handler(): Promise<{ statusCode: number; body: string }> {
  const secret = await getSecret<RdsSecret>(process.env.DB_SECRET_ID as string, { transform: 'json' });
  if (!secret) throw new Error('The database secret is missing.');
  pool ??= new Pool({
    host: secret.host,
    port: Number(secret.port),
    user: secret.username,
    password: secret.password,
    database: secret.dbname,
    ssl: { ca: readFileSync(process.env.DB_SSL_CA_FILE as string, 'utf8'), rejectUnauthorized: true },
    max: 2,
  });
  const { rows } = await pool.query('SELECT 1 AS ok');
  return { statusCode: 200, body: JSON.stringify(rows[0]) };
}
