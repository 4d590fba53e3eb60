// Screenshots of the pages for the README and docs/小程序.md: each page rendered by
// miniprogram-simulate with the real backend's data (the demo school), its DOM and app.wxss (rpx at a
// 390 px wide phone) put in an HTML page with the navigation and tab bars, photographed by Chromium.
// Run: cd miniprogram && npm run screenshots   (writes docs/images/miniprogram/*.png)
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { install, backend } = require('./wx.js')
const { ROOT, page } = require('./helpers.js')
const config = require('../config.js')
const api = require('../utils/api.js')

config.apiBase = `${backend.url}/api/v1`
const OUT = path.resolve(ROOT, '..', 'docs', 'images', 'miniprogram')
const WIDTH = 390
const APP = JSON.parse(fs.readFileSync(path.join(ROOT, 'app.json'), 'utf8'))

function css() {
  const px = (n) => `${(Number(n) * WIDTH / 750).toFixed(2)}px`
  return fs.readFileSync(path.join(ROOT, 'app.wxss'), 'utf8')
    .replace(/([\d.]+)rpx/g, (_m, n) => px(n))
    .replace(/\.([a-z][\w-]*)/g, '.main--$1')
    .replace(/^page /m, 'body ')
    .replace(/^input, textarea /m, 'wx-input, wx-textarea ')
}

function html(title, body, tab) {
  const tabs = APP.tabBar.list.map((t) => `<span class="${t.pagePath === tab ? 'on' : ''}">${t.text}</span>`).join('')
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    html { font-size: 16px; } body { margin: 0; font-family: "WenQuanYi Micro Hei", sans-serif; }
    wx-view, wx-input, wx-textarea, main { display: block; } wx-page-meta { display: none; }
    wx-input, wx-textarea { background: #fff; } wx-textarea { min-height: 90px; }
    .nav { background: #b71c1c; color: #fff; text-align: center; padding: 40px 0 12px; font-size: 17px; }
    .tabs { position: fixed; bottom: 0; left: 0; right: 0; display: flex; background: #fff; border-top: 1px solid #ddd; }
    .tabs span { flex: 1; text-align: center; padding: 12px 0 22px; color: #666; font-size: 13px; }
    .tabs span.on { color: #b71c1c; font-weight: bold; } .space { height: 70px; }
    ${css()}</style></head><body><div class="nav">${title}</div>${body}
    ${tab ? `<div class="space"></div><div class="tabs">${tabs}</div>` : ''}</body></html>`
}

// rich-text shows the HTML it is given (miniprogram-simulate leaves the element empty).
function withRichText(dom, richHtml) {
  return richHtml ? dom.replace(/<wx-rich-text([^>]*)><\/wx-rich-text>/, `<div$1>${richHtml}</div>`) : dom
}

function shoot(name, comp, title, tab, richHtml) {
  const file = path.join(os.tmpdir(), `wxbot-mp-${name}.html`)
  fs.writeFileSync(file, html(title, withRichText(comp.dom.outerHTML, richHtml), tab))
  execFileSync('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
    `--window-size=${WIDTH},844`, `--screenshot=${path.join(OUT, `${name}.png`)}`, `file://${file}`],
  { stdio: 'ignore' })
}

test('screenshots of every page', async () => {
  fs.mkdirSync(OUT, { recursive: true })
  install('mScreens0001')
  shoot('bind', page('bind'), '绑定身份')
  await api.call('bind', { body: { student_no: '2023100', name: '陈晓红' } })
  await api.call('feedback', { body: { text: '希望多组织志愿服务活动' } })
  const home = page('index')
  await home.instance.onLoad()
  shoot('home', home, '首页', 'pages/index/index')
  const read = page('read')
  await read.instance.onLoad({ id: String(home.data.studies[0].id) })
  read.instance.stopTimer()
  shoot('read', read, '阅读', '', read.data.material.body_html)
  const quiz = page('quiz')
  await quiz.instance.onLoad()
  shoot('quiz-start', quiz, '答题', 'pages/quiz/index')
  await quiz.instance.startDaily()
  await quiz.instance.choose({ currentTarget: { dataset: { index: 1 } } })
  if (quiz.data.question.kind === 'multiple') await quiz.instance.submit()
  shoot('quiz', quiz, '答题', 'pages/quiz/index')
  const events = page('events')
  await events.instance.onLoad()
  shoot('events', events, '活动', 'pages/events/index')
  const me = page('me')
  await me.instance.onLoad()
  shoot('me', me, '我的', 'pages/me/index')
  expect(fs.readdirSync(OUT).filter((f) => f.endsWith('.png')).length).toBeGreaterThanOrEqual(7)
})
