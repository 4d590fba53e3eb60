// 活动: the events for the member with their state; 报名 / 取消 / 请假; 扫码签到 and the 6-digit code.
const config = require('../../config.js')
const { api, run, toast, localTime } = require('../../utils/page.js')
const checkin = require('../../utils/checkin.js')

Component({
  data: { loading: true, error: '', events: [], page: 1, total: 0, code: '', message: '', reason: '', leaveFor: 0 },
  methods: {
    onLoad() { return this.refresh() },
    onShow() { if (!this.data.loading) this.refresh() },
    refresh() {
      return run(this, async () => {
        const listed = await api.call('events', { query: { page: 1, per_page: 20 } })
        this.setData({ events: listed.items.map((e) => ({ ...e, when: localTime(e.starts_at) })),
          total: listed.paging.total })
      })
    },
    act(name, id, body) {
      return run(this, async () => {
        const done = await api.call(name, { params: { event_id: id }, body })
        this.setData({ message: done.message })
        toast(done.message)
        if (name === 'signup') await this.askSubscription()
        await this.refresh()
      })
    },
    signUp(e) { return this.act('signup', e.currentTarget.dataset.id) },
    cancel(e) { return this.act('cancel', e.currentTarget.dataset.id) },
    askLeave(e) { this.setData({ leaveFor: e.currentTarget.dataset.id, reason: '' }) },
    inputReason(e) { this.setData({ reason: e.detail.value }) },
    leave(e) {
      if (!this.data.reason.trim()) {
        this.setData({ error: '请先写上请假理由。' })
        return undefined
      }
      const reason = this.data.reason.trim()
      this.setData({ leaveFor: 0 })
      return this.act('leave', e.currentTarget.dataset.id, { reason })
    },
    // A reminder of this event may reach the member as a subscription message: ask at this moment.
    askSubscription() {
      const id = config.subscribeTemplateId
      if (!id || !wx.requestSubscribeMessage) return Promise.resolve()
      return new Promise((resolve) => {
        wx.requestSubscribeMessage({
          tmplIds: [id],
          success: (res) => api.call('subscriptions', { body: { results: { [id]: res[id] } } })
            .then(resolve, resolve),
          fail: () => resolve(),
        })
      })
    },
    scan() {
      return run(this, async () => {
        const path = await checkin.scan()
        const done = await checkin.byPath(path)
        this.setData({ message: done.message })
        await this.refresh()
      })
    },
    inputCode(e) { this.setData({ code: e.detail.value.replace(/\s/g, '') }) },
    sendCode() {
      return run(this, async () => {
        const done = await checkin.byCode(this.data.code)
        this.setData({ message: done.message, code: '' })
        await this.refresh()
      })
    },
  },
})
