// Tests run as ESM under Node 24 (the runtime GitHub uses for node24 actions), through
// ts-jest's ESM preset. Files named *.docker.test.ts need the Docker engine and the test
// image; the two projects let either half run alone.
const shared = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest',
      { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }]
  }
}

export default {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.docker\\.test\\.ts$'] },
    { ...shared, displayName: 'docker', testMatch: ['<rootDir>/__tests__/**/*.docker.test.ts'] }
  ],
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.mjs'],
  testTimeout: 120000
}
