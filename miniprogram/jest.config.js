// The pages render in jsdom through miniprogram-simulate; the backend is the real product, started
// once for the run in sandbox mode (tests/backend.js).
module.exports = {
  testEnvironment: 'jsdom',
  globalSetup: './tests/backend.js',
  globalTeardown: './tests/backend-stop.js',
  testTimeout: 60000,
  roots: ['<rootDir>/tests'],
}
