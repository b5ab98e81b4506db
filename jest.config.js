// ESM throughout (NestJS 12 ships ESM only), so jest runs with --experimental-vm-modules.
const transform = { '^.+\\.ts$': ['ts-jest', { useESM: true }] };
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
};
export default {
  // testTimeout is global in Jest 30. Real sharp, ffmpeg and processes run in both projects: generous
  // limits, since a 2-core CI box may be loaded; timings belong in `npm run bench`, not here.
  testTimeout: 120_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
    },
  ],
};
