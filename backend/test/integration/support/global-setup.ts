// Jest global setup for the integration project: starts one local PostgreSQL (TLS on, throwaway temp directory)
// and hands its facts to the test workers as TEST_PG_* environment variables, which workers inherit.
// The handle stays on globalThis for global-teardown.ts, which runs in this same process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalPostgres, type LocalPostgres } from '../../../../scripts/lib/local-postgres';

/** What global-setup leaves on globalThis for global-teardown. */
export interface IntegrationGlobals {
  localPostgres?: LocalPostgres;
  localPostgresDir?: string;
}

/**
 * Starts the shared PostgreSQL and exports TEST_PG_HOST, _PORT, _USER, _PASSWORD, _CA_FILE, _OTHER_CA_FILE and
 * _DATA_DIR. A default export because Jest requires one for globalSetup.
 */
export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-test-'));
  const globals = globalThis as IntegrationGlobals;
  globals.localPostgresDir = dir;

  // Jest skips the teardown when the setup throws, so clean up here.
  const server = await startLocalPostgres({ dir }).catch((error: unknown) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  globals.localPostgres = server;
  // Interrupted runs skip the teardown; the server stops itself on exit, and this removes what is left.
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

  Object.assign(process.env, {
    TEST_PG_HOST: server.host,
    TEST_PG_PORT: String(server.port),
    TEST_PG_USER: server.user,
    TEST_PG_PASSWORD: server.password,
    TEST_PG_CA_FILE: server.caFile,
    TEST_PG_OTHER_CA_FILE: server.otherCaFile,
    TEST_PG_DATA_DIR: server.dataDir,
  });
}
