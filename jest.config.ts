import type { Config } from 'jest';

// ts-jest with isolatedModules: type checking is done once by `tsc --noEmit` in `npm test`, not per file.
const transform: Config['transform'] = { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] };

const config: Config = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/backend/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/backend/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/backend/test/integration/support/global-setup.ts',
      globalTeardown: '<rootDir>/backend/test/integration/support/global-teardown.ts',
      testTimeout: 60_000,
    },
  ],
};

export default config;
