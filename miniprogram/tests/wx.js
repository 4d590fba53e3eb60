// The `wx` API replaced only at its edge: wx.request goes over HTTP to the real backend, wx.login gets
// a one-time code from the sandbox (POST /sandbox/miniprogram/login), wx.scanCode gives the path the
// test put in front of the camera; storage is the phone's, kept in memory.
const http = require('http')

const backend = JSON.parse(process.env.WXBOT_MP_BACKEND)

function httpJson(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const payload = body === undefined || body === null ? undefined : Buffer.from(JSON.stringify(body))
    // agent false: a fresh connection each time (a pooled one the server closed would fail the test, not the app)
    const req = http.request({ agent: false, method, hostname: target.hostname, port: target.port, path: target.pathname + target.search,
      headers: { ...headers, ...(payload ? { 'Content-Length': payload.length } : {}) } }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let data = text
        try { data = text ? JSON.parse(text) : '' } catch (e) { /* not JSON */ }
        resolve({ statusCode: res.statusCode, data })
      })
    })
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

function install(openid) {
  const storage = {}
  const phone = { camera: '', navigations: [], toasts: [], subscribe: {}, offline: false, requests: [] }
  global.wx = {
    request({ url, method = 'GET', data, header, success, fail }) {
      phone.requests.push({ method, url, header })
      if (phone.offline) { setTimeout(() => fail && fail({ errMsg: 'request:fail' }), 0); return }
      httpJson(method, url, method === 'GET' ? undefined : data, header)
        .then((res) => success && success(res), (err) => fail && fail({ errMsg: `request:fail ${err.message}` }))
    },
    login({ success, fail }) {
      httpJson('POST', `${backend.url}/sandbox/miniprogram/login`, { openid }, { 'Content-Type': 'application/json' })
        .then((res) => success({ code: res.data.code }), () => fail && fail({ errMsg: 'login:fail' }))
    },
    scanCode({ success, fail }) {
      setTimeout(() => (phone.camera ? success({ path: phone.camera, scanType: 'WX_CODE' }) : fail({ errMsg: 'scanCode:fail cancel' })), 0)
    },
    requestSubscribeMessage({ tmplIds, success }) {
      setTimeout(() => success(Object.fromEntries(tmplIds.map((id) => [id, phone.subscribe[id] || 'reject']))), 0)
    },
    getStorageSync: (key) => storage[key],
    setStorageSync: (key, value) => { storage[key] = value },
    removeStorageSync: (key) => { delete storage[key] },
    navigateTo: ({ url }) => phone.navigations.push(url),
    switchTab: ({ url }) => phone.navigations.push(url),
    showToast: ({ title }) => phone.toasts.push(title),
    setClipboardData: () => {},
  }
  return phone
}

module.exports = { install, backend, httpJson }
