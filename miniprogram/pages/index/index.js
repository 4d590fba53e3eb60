// 首页: today's study, the next event, and the notices waiting for the member.
const { api, run, go, localTime } = require('../../utils/page.js')

Component({
  data: { loading: true, error: '', name: '', points: 0, streak: 0, studies: [], nextEvent: null, notices: [] },
  methods: {
    onLoad() { return this.refresh() },
    onShow() { if (!this.data.loading) this.refresh() },
    onPullDownRefresh() { return this.refresh() },
    refresh() {
      return run(this, async () => {
        const me = await api.call('me')
        const [today, events, notices] = await Promise.all([
          api.call('studyToday'), api.call('events', { query: { per_page: 5 } }), api.call('notices')])
        const next = events.items[0]
        this.setData({
          name: me.name, points: me.points_total, streak: me.streak, studies: today.items,
          nextEvent: next ? { ...next, when: localTime(next.starts_at) } : null, notices: notices.items,
        })
      })
    },
    openMaterial(e) { go(`/pages/read/index?id=${e.currentTarget.dataset.id}`) },
    openEvents() { go('/pages/events/index') },
    markSeen() {
      const ids = this.data.notices.map((n) => n.id)
      if (!ids.length) return undefined
      return run(this, async () => {
        await api.call('noticesSeen', { body: { ids } })
        this.setData({ notices: [] })
      })
    },
  },
})
