// The benchmarks' handler for this module: one `SELECT 1` through the db facade, configured from the environment
// (DB_SECRET_ID, DB_SSL_CA_FILE) like the example handlers. Bundled by scripts/bench/bundles.ts for the cold-start,
// bundle-size and Secrets Manager call counts, next to the peers in scripts/bench/peers/.
import { query } from '../../backend/src/shared/db';

/** The Lambda entry point. */
export async function handler(): Promise<{ statusCode: number; body: string }> {
  const { rows } = await query<{ ok: number }>('SELECT 1 AS ok');
  return { statusCode: 200, body: JSON.stringify(rows[0]) };
}
