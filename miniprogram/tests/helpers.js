// What the page tests share: the backend's own answers (backend_tool.py, in the backend's environment)
// and pages rendered by miniprogram-simulate.
const { execFileSync } = require('child_process')
const path = require('path')
const simulate = require('miniprogram-simulate')
const { backend } = require('./wx.js')

const ROOT = path.resolve(__dirname, '..')
const REPO = path.resolve(ROOT, '..')

// The backend's records, or the organiser's side: tool('facts', '2023100'), tool('scene', '主题党日').
function tool(...args) {
  const out = execFileSync(path.join(REPO, '.venv', 'bin', 'python'), [path.join(__dirname, 'backend_tool.py'), ...args],
    { env: backend.env, cwd: REPO })
  return JSON.parse(out.toString())
}

const loaded = {} // a page's definition runs once (require's cache): load once, render as often as needed
function page(name) {
  if (!loaded[name]) loaded[name] = simulate.load(path.join(ROOT, 'pages', name, 'index'), { rootPath: ROOT })
  const comp = simulate.render(loaded[name])
  comp.attach(document.createElement('parent-wrapper'))
  return comp
}

const text = (comp) => comp.dom.textContent.replace(/\s+/g, ' ')
const tap = (dataset) => ({ currentTarget: { dataset } })
const typed = (value) => ({ detail: { value } })

module.exports = { ROOT, tool, page, text, tap, typed }
