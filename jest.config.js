// ESM throughout (NestJS 12 ships ESM only), so jest runs with --experimental-vm-modules.
const transform = { '^.+\\.ts$': ['ts-jest', { useESM: true }] };
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
};
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      // Real sharp and ffmpeg run in unit tests too: generous limits, a 2-core CI box may be loaded.
      testTimeout: 60_000,
      testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testTimeout: 120_000,
      testMatch: ['<rootDir>/test/**/*.test.ts'],
    },
  ],
};
