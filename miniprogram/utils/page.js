// What every page does with the API: shows a clear sentence when something fails, sends a member who
// is not bound yet to the binding page, and never leaves a spinner turning.
const api = require('./api.js')

function go(url) {
  if (wx.navigateTo) wx.navigateTo({ url })
}

// Run `work` for a page: {loading} while it runs, {error} with the member's sentence when it fails.
async function run(page, work) {
  page.setData({ loading: true, error: '' })
  try {
    const result = await work()
    page.setData({ loading: false })
    return result
  } catch (err) {
    if (err && err.code === 'not_bound') {
      page.setData({ loading: false })
      go('/pages/bind/index')
      return undefined
    }
    page.setData({ loading: false, error: (err && err.message) || '出了点问题，请重试。' })
    return undefined
  }
}

function toast(title) {
  if (wx.showToast) wx.showToast({ title, icon: 'none' })
}

function localTime(iso) {
  const at = new Date(iso.endsWith('Z') || iso.includes('+') ? iso : `${iso}Z`)
  const pad = (n) => String(n).padStart(2, '0')
  const shanghai = new Date(at.getTime() + 8 * 3600 * 1000)
  return `${pad(shanghai.getUTCMonth() + 1)}-${pad(shanghai.getUTCDate())} ${pad(shanghai.getUTCHours())}:${pad(shanghai.getUTCMinutes())}`
}

module.exports = { api, run, go, toast, localTime }
