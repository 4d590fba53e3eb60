// The page the check-in screen's mini-program code opens (WeChat passes the code's scene), and where a
// member who opened the mini-program some other way scans or types the code.
const { run } = require('../../utils/page.js')
const checkin = require('../../utils/checkin.js')

Component({
  data: { loading: false, error: '', message: '', code: '' },
  methods: {
    onLoad(options) {
      if (!options || !options.scene) return undefined
      return run(this, async () => {
        const done = await checkin.byPath(`pages/checkin/index?scene=${options.scene}`)
        this.setData({ message: done.message })
      })
    },
    scan() {
      return run(this, async () => {
        const done = await checkin.byPath(await checkin.scan())
        this.setData({ message: done.message })
      })
    },
    inputCode(e) { this.setData({ code: e.detail.value.replace(/\s/g, '') }) },
    sendCode() {
      return run(this, async () => {
        const done = await checkin.byCode(this.data.code)
        this.setData({ message: done.message, code: '' })
      })
    },
  },
})
