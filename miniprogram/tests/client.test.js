// The API client: every call it can make is an operation of the served OpenAPI document; a lost
// session is replaced silently; a write retried after a network failure keeps its Idempotency-Key;
// a page says clearly when the network or the server is down.
const fs = require('fs')
const path = require('path')
const { install, backend, httpJson } = require('./wx.js')
const { ROOT, page } = require('./helpers.js')
const config = require('../config.js')
const api = require('../utils/api.js')

config.apiBase = `${backend.url}/api/v1`

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return ['node_modules', 'tests'].includes(entry.name) ? [] : sources(full)
    return entry.name.endsWith('.js') ? [full] : []
  })
}

test('every operation of the client is an operation of the served document, with its path parameters', async () => {
  const { data: doc } = await httpJson('GET', `${backend.url}/api/v1/openapi.json`)
  for (const [name, [method, template]] of Object.entries(api.OPERATIONS)) {
    const operation = (doc.paths[`/api/v1${template}`] || {})[method.toLowerCase()]
    expect([name, operation ? 'found' : 'missing']).toEqual([name, 'found'])
    const documented = (operation.parameters || []).filter((p) => p.in === 'path').map((p) => p.name).sort()
    const used = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    expect([name, used]).toEqual([name, documented])
  }
})

test('the pages call only operations the client knows', () => {
  const called = sources(ROOT).flatMap((file) => [...fs.readFileSync(file, 'utf8').matchAll(/api\.call\('(\w+)'/g)]
    .map((m) => m[1]))
  expect(called.length).toBeGreaterThan(10)
  for (const name of called) expect(Object.keys(api.OPERATIONS)).toContain(name)
})

test('a session the server ended is replaced silently by a new login', async () => {
  install('mClient0001')
  api.forget()
  const first = await api.ensureLogin()
  await httpJson('POST', `${backend.url}/api/v1/logout`, {}, { Authorization: `Bearer ${first.token}` })
  await expect(api.call('studyToday')).rejects.toMatchObject({ code: 'not_bound' }) // signed in again, not 401
  expect((await api.ensureLogin()).token).not.toBe(first.token)
})

test('a write retried after network failures keeps one Idempotency-Key, and the page says what is wrong', async () => {
  const phone = install('mClient0002')
  api.forget()
  await api.ensureLogin()
  phone.offline = true
  await expect(api.call('feedback', { body: { text: '网络测试' } })).rejects.toMatchObject({ code: 'network' })
  const keys = phone.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/feedback'))
    .map((r) => r.header['Idempotency-Key'])
  expect(keys.length).toBe(3)
  expect(new Set(keys).size).toBe(1)
  const home = page('index')
  await home.instance.onLoad()
  expect(home.dom.textContent).toContain('网络不通')
  expect(home.dom.textContent).toContain('重试')
  phone.offline = false
})
