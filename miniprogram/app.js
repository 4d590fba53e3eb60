const api = require('./utils/api.js')

App({
  // Sign in on launch (wx.login's code for our own session); pages wait for the same login.
  onLaunch() {
    api.ensureLogin().catch(() => {}) // a page shows what went wrong when it needs the API
  },
})
