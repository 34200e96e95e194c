// Jest global teardown for the integration project: stops the PostgreSQL that global-setup.ts started, also when a
// test restarted it through pg_ctl from a worker, and removes its temp directory so no server or files outlive the run.
// Runs in the same process as the setup, hence the handle on globalThis.
import fs from 'node:fs';
import { stopPostgresAt } from '../../../../scripts/lib/local-postgres';
import type { IntegrationGlobals } from './global-setup';

/** Stops the shared PostgreSQL and deletes its directory. A default export because Jest requires one here. */
export default async function globalTeardown(): Promise<void> {
  const { localPostgres, localPostgresDir } = globalThis as IntegrationGlobals;

  if (localPostgres) await localPostgres.stop();
  else if (process.env.TEST_PG_DATA_DIR) await stopPostgresAt(process.env.TEST_PG_DATA_DIR);

  if (localPostgresDir) fs.rmSync(localPostgresDir, { recursive: true, force: true });
}
