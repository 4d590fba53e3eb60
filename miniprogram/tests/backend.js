// The real backend for the run: the product in sandbox mode on SQLite and the embedded store, its
// database migrated and the demo school loaded (what `make run` does), served by gunicorn as `make
// run` serves it. The tests reach it as the mini-program would, over HTTP.
const { execFileSync, spawn } = require('child_process')
const fs = require('fs')
const http = require('http')
const net = require('net')
const os = require('os')
const path = require('path')

const ROOT = path.resolve(__dirname, '..', '..')
const BIN = path.join(ROOT, '.venv', 'bin')

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function healthy(url) {
  return new Promise((resolve) => {
    http.get(`${url}/healthz`, (res) => { res.resume(); resolve(res.statusCode === 200) })
      .on('error', () => resolve(false))
  })
}

module.exports = async function startBackend() {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxbot-mp-'))
  const url = `http://127.0.0.1:${port}`
  const env = {
    ...process.env,
    WXBOT_DATABASE_URL: `sqlite:///${dir}/wxbot.db`,
    WXBOT_REDIS_URL: '',
    WXBOT_SECRET_KEY: 'miniprogram-tests-secret-key-0001',
    WXBOT_SERVER__PUBLIC_URL: url,
    // Reading credit after 3 s, so that a test need not wait a minute (screenshots show the real rule).
    ...(process.env.MP_SCREENSHOTS ? {} : { WXBOT_STUDY__READ_SECONDS: '3' }),
    WXBOT_LOG_LEVEL: 'WARNING',
  }
  const flask = path.join(BIN, 'flask')
  execFileSync(flask, ['--app', 'wxbot', 'db', 'upgrade'], { cwd: ROOT, env, stdio: 'ignore' })
  execFileSync(flask, ['--app', 'wxbot', 'demo', 'load'], { cwd: ROOT, env, stdio: 'ignore' })
  const server = spawn(path.join(BIN, 'gunicorn'), ['-c', 'gunicorn.conf.py', '-b', `127.0.0.1:${port}`,
    'wxbot.wsgi:app'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'server.log'), 'a')],
    detached: true })
  for (let i = 0; i < 150 && !(await healthy(url)); i += 1) await new Promise((r) => setTimeout(r, 200))
  if (!(await healthy(url))) throw new Error(`the backend did not start: see ${dir}/server.log`)
  const state = { url, pid: server.pid, dir, env: { ...env, PATH: process.env.PATH } }
  fs.writeFileSync(path.join(os.tmpdir(), 'wxbot-mp-backend.json'), JSON.stringify(state))
  process.env.WXBOT_MP_BACKEND = JSON.stringify(state)
  globalThis.wxbotBackend = server
}
