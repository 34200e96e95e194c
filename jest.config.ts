import type { Config } from 'jest';

// ts-jest transpiles each file alone (tsconfig's isolatedModules): type checking is done once by `tsc --noEmit` in `npm test`.
const transform: Config['transform'] = { '^.+\\.ts$': 'ts-jest' };
const setupFiles = ['<rootDir>/backend/test/support/quiet-sdk-warning.ts'];

const config: Config = {
  // One worker: integration files share one PostgreSQL server, and some restart it on purpose.
  maxWorkers: 1,
  // A global option (ignored inside a project): integration tests start servers and wait on real networks.
  testTimeout: 30_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      setupFiles,
      testMatch: ['<rootDir>/backend/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      setupFiles,
      testMatch: ['<rootDir>/backend/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/backend/test/integration/support/global-setup.ts',
      globalTeardown: '<rootDir>/backend/test/integration/support/global-teardown.ts',
    },
  ],
};

export default config;
