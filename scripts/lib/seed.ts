// Loads the demo data (backend/seed/demo.sql: one tenant, two wallets) for the local run and examples. It is not a
// migration: production databases never get it. Applying it again changes nothing, so `npm start` can always call it.
// The fixed ids are exported for printed curl commands and tests.
import fs from 'node:fs';
import path from 'node:path';
import type { Database } from '../../backend/src/shared/db';

/** The demo tenant's id. */
export const DEMO_TENANT_ID = '00000000-0000-4000-8000-000000000001';
/** Alice's wallet: 100000 cents after seeding. */
export const DEMO_WALLET_A_ID = '00000000-0000-4000-8000-0000000000a1';
/** Bob's wallet: 50000 cents after seeding. */
export const DEMO_WALLET_B_ID = '00000000-0000-4000-8000-0000000000b2';

/** The seed file applied by {@link seedDemoData}. */
export const SEED_FILE = path.resolve(__dirname, '../../backend/seed/demo.sql');

/** Inserts the demo tenant and wallets where missing, in one transaction. */
export async function seedDemoData(db: Pick<Database, 'withTransaction'>, file: string = SEED_FILE): Promise<void> {
  const sql = fs.readFileSync(file, 'utf8');
  await db.withTransaction(async (client) => {
    await client.query(sql);
  });
}
