// Check-in, shared by the events page and the page the screen's mini-program code opens.
const { api } = require('./page.js')

// wx.scanCode inside the mini-program: the code's path, as the phone gives it (encoded on iOS, raw on
// Android: the server reads both).
function scan() {
  return new Promise((resolve, reject) => {
    wx.scanCode({
      onlyFromCamera: true, scanType: ['wxCode', 'qrCode'],
      success: (res) => resolve(res.path || res.result || ''),
      fail: () => reject(new api.ApiError(0, 'cancelled', '没有扫到签到码。')),
    })
  })
}

function byPath(path) { return api.call('checkin', { body: { path } }) }

function byCode(code) { return api.call('checkin', { body: { code } }) }

module.exports = { scan, byPath, byCode }
