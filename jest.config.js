// ESM throughout (NestJS 12 ships ESM only), so jest runs with --experimental-vm-modules.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';

// The package names of package.json "imports" (#contracts, #codecs/errors.js, ...) point at dist/ for
// Node; Jest runs the sources, so each name maps to the same path under the repo root, less `dist/`.
const { imports } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const packageNames = Object.fromEntries(
  Object.entries(imports).map(([name, target]) => {
    const source = `<rootDir>/${target.replace(/^\.\/dist\//, '')}`;
    return name.endsWith('/*')
      ? [`^${name.slice(0, -1)}(.*)\\.js$`, source.replace(/\*$/, '$1')]
      : [`^${name}$`, source.replace(/\.js$/, '')];
  }),
);

const transform = { '^.+\\.ts$': ['ts-jest', { useESM: true }] };
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { ...packageNames, '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
};
export default {
  // testTimeout is global in Jest 30. `*.spec.ts` (unit) need neither Redis nor ffmpeg: fakes, pure
  // functions, in-process sharp. `*.test.ts` (integration) spawn redis-server, ffmpeg or the built
  // services, in test/ or next to the code they exercise. Generous limits, since a 2-core CI box may be
  // loaded; timings belong in `npm run bench`, not here.
  testTimeout: 120_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/apps/**/*.spec.ts',
        '<rootDir>/libs/**/*.spec.ts',
        '<rootDir>/test/**/*.spec.ts',
      ],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: [
        '<rootDir>/test/**/*.test.ts',
        '<rootDir>/apps/**/*.test.ts',
        '<rootDir>/libs/**/*.test.ts',
      ],
    },
  ],
};
