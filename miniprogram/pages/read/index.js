// 阅读: the material, its attachments and the reading progress. While the page is visible it reports
// every 15 seconds (the reading page's rule): reading for the required time earns the study credit,
// once, by the same rules as the reading page opened from the chat.
const { api, run } = require('../../utils/page.js')

const EVERY = 15000

Component({
  data: { loading: true, error: '', material: null, seconds: 0, need: 60, credited: false, points: 0 },
  methods: {
    onLoad(options) {
      this.materialId = Number(options.id)
      return run(this, async () => {
        const page = await api.call('material', { params: { material_id: this.materialId } })
        this.setData({ material: page, seconds: page.seconds, need: page.need, credited: page.read })
        this.lastReport = Date.now()
        this.startTimer()
      })
    },
    onShow() { if (this.materialId) { this.lastReport = Date.now(); this.startTimer() } },
    onHide() { this.report(); this.stopTimer() },
    onUnload() { this.report(); this.stopTimer() },
    startTimer() {
      this.stopTimer()
      this.timer = setInterval(() => this.report(), EVERY)
    },
    stopTimer() { if (this.timer) clearInterval(this.timer); this.timer = null },
    // The seconds visible since the last report (the server never counts more than has passed).
    report() {
      if (!this.materialId || !this.lastReport) return Promise.resolve()
      const seconds = Math.min(3600, Math.round((Date.now() - this.lastReport) / 1000))
      this.lastReport = Date.now()
      if (seconds <= 0) return Promise.resolve()
      return api.call('beacon', { params: { material_id: this.materialId }, body: { seconds } })
        .then((state) => this.setData({ seconds: state.seconds, need: state.need, credited: state.credited,
          points: this.data.points + state.points }))
        .catch(() => {}) // the next report carries the time on
    },
    openAttachment(e) {
      if (wx.setClipboardData) wx.setClipboardData({ data: e.currentTarget.dataset.url })
    },
  },
})
