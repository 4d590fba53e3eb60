// The one client of the backend's API (/api/v1, its document at /api/v1/openapi.json). Every call
// the pages make is an operation of OPERATIONS, which tests/api.test.js checks against the served
// document (method, path and path parameters).
//
// - Signs in with wx.login's code and keeps our own session (never an openid the client could make up).
// - A session the server no longer knows is replaced silently by a new login, and the call made again.
// - A write carries an Idempotency-Key made once per action and kept across its retries, so that a
//   retry after a lost answer counts once.
// - A network failure is retried twice; then the call fails with code "network" and a sentence.
const config = require('../config.js')

const OPERATIONS = {
  login: ['POST', '/login'],
  renew: ['POST', '/session/renew'],
  logout: ['POST', '/logout'],
  bind: ['POST', '/bind'],
  unbind: ['POST', '/unbind'],
  me: ['GET', '/me'],
  studyToday: ['GET', '/study/today'],
  studyHistory: ['GET', '/study/history'],
  material: ['GET', '/study/materials/{material_id}'],
  beacon: ['POST', '/study/materials/{material_id}/beacon'],
  ranking: ['GET', '/ranking'],
  development: ['GET', '/development'],
  quizDaily: ['POST', '/quiz/daily'],
  quizReview: ['POST', '/quiz/review'],
  quizAnswer: ['POST', '/quiz/answer'],
  quizExit: ['POST', '/quiz/exit'],
  quizBook: ['GET', '/quiz/book'],
  contests: ['GET', '/contests'],
  contestStart: ['POST', '/contests/{contest_id}/start'],
  events: ['GET', '/events'],
  signup: ['POST', '/events/{event_id}/signup'],
  cancel: ['POST', '/events/{event_id}/cancel'],
  leave: ['POST', '/events/{event_id}/leave'],
  checkin: ['POST', '/checkin'],
  feedback: ['POST', '/feedback'],
  myPosts: ['GET', '/feedback/mine'],
  topics: ['GET', '/topics'],
  reply: ['POST', '/topics/{topic_id}/replies'],
  notices: ['GET', '/notices'],
  noticesSeen: ['POST', '/notices/seen'],
  subscriptions: ['POST', '/subscriptions'],
}

const RETRIES = 2
const NETWORK = { code: 'network', message: '网络不通或服务器暂时不可用，请检查网络后重试。' }
let session = null // {token, renewAt}
let signingIn = null // the login in progress: every page waits for the same one

class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

function base() {
  return config.apiBase
}

function newKey() {
  const random = Math.random().toString(36).slice(2, 12)
  return `mp-${Date.now().toString(36)}-${random}`
}

function pathOf(template, params) {
  return template.replace(/\{(\w+)\}/g, (_m, name) => {
    if (params[name] === undefined) throw new Error(`missing path parameter ${name}`)
    return encodeURIComponent(params[name])
  })
}

function queryOf(query) {
  const parts = Object.keys(query || {}).filter((k) => query[k] !== undefined)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k])}`)
  return parts.length ? `?${parts.join('&')}` : ''
}

// One HTTP exchange: resolves {status, data}, or rejects when the network failed.
function send(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    wx.request({
      url, method, data: body, header: { 'Content-Type': 'application/json', ...headers }, timeout: 10000,
      success: (res) => resolve({ status: res.statusCode, data: res.data }),
      fail: (err) => reject(err),
    })
  })
}

async function exchange(method, url, body, headers) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await send(method, url, body, headers)
    } catch (err) {
      if (attempt >= RETRIES) throw new ApiError(0, NETWORK.code, NETWORK.message)
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)))
    }
  }
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({ success: (res) => resolve(res.code), fail: () => reject(new ApiError(0, 'login_failed', '微信登录失败，请重试。')) })
  })
}

async function login() {
  const code = await wxLogin()
  const { status, data } = await exchange('POST', base() + OPERATIONS.login[1], { code }, {})
  if (status !== 200) throw new ApiError(status, data && data.code, (data && data.message) || '登录失败，请重试。')
  session = { token: data.token, renewAt: Date.now() + (data.expires_in * 1000) / 2, bound: data.bound }
  try { wx.setStorageSync('session', session) } catch (e) { /* storage is a convenience */ }
  return session
}

function ensureLogin() {
  if (session) return Promise.resolve(session)
  try {
    const kept = wx.getStorageSync('session')
    if (kept && kept.token) {
      session = kept
      return Promise.resolve(session)
    }
  } catch (e) { /* nothing kept */ }
  if (!signingIn) signingIn = login().finally(() => { signingIn = null })
  return signingIn
}

function forget() {
  session = null
  try { wx.removeStorageSync('session') } catch (e) { /* nothing kept */ }
}

// Call an operation: call('signup', {params: {event_id: 3}}), call('feedback', {body: {text}}).
async function call(name, { params = {}, query, body, key } = {}) {
  const [method, template] = OPERATIONS[name]
  const url = base() + pathOf(template, params) + queryOf(query)
  const idempotency = method === 'POST' ? (key || newKey()) : null
  for (let fresh = 0; fresh < 2; fresh += 1) {
    const { token } = await ensureLogin()
    const headers = { Authorization: `Bearer ${token}` }
    if (idempotency) headers['Idempotency-Key'] = idempotency
    const { status, data } = await exchange(method, url, body, headers)
    if (status === 401 && fresh === 0) { // the session ended (expired, unbound elsewhere): sign in again
      forget()
      continue
    }
    if (status >= 200 && status < 300) {
      if (session && Date.now() > session.renewAt && name !== 'renew' && name !== 'logout') renew()
      return data
    }
    throw new ApiError(status, data && data.code, (data && data.message) || `服务器暂时出了问题（${status}）。`)
  }
  throw new ApiError(401, 'session_expired', '登录已过期，请重新进入小程序。')
}

// A new session before the old one ends (silently; a failure leaves the old one in use).
function renew() {
  call('renew').then((data) => {
    session = { token: data.token, renewAt: Date.now() + (data.expires_in * 1000) / 2, bound: data.bound }
    try { wx.setStorageSync('session', session) } catch (e) { /* storage is a convenience */ }
  }).catch(() => {})
}

module.exports = { OPERATIONS, ApiError, call, login, ensureLogin, forget, pathOf }
