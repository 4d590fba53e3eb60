// 我的: points, streak and rank; 我的发展; 我的留言 with the organisers' answers; a new 留言; topics and replies.
const { api, run, go, toast } = require('../../utils/page.js')

Component({
  data: { loading: true, error: '', me: null, development: null, posts: [], topics: [], text: '', replyText: '', message: '' },
  methods: {
    onLoad() { return this.refresh() },
    onShow() { if (!this.data.loading) this.refresh() },
    refresh() {
      return run(this, async () => {
        const [me, development, posts, topics] = await Promise.all([
          api.call('me'), api.call('development'), api.call('myPosts'), api.call('topics')])
        this.setData({ me, development, posts: posts.items, topics: topics.items })
      })
    },
    inputText(e) { this.setData({ text: e.detail.value }) },
    post() {
      const text = this.data.text.trim()
      if (!text) {
        this.setData({ error: '请写上留言的内容。' })
        return undefined
      }
      return run(this, async () => {
        const done = await api.call('feedback', { body: { text } })
        this.setData({ message: done.message, text: done.code === 'blocked' ? text : '' })
        toast(done.message)
        await this.refresh()
      })
    },
    openTopic(e) { go(`/pages/web/index?url=${encodeURIComponent(e.currentTarget.dataset.url)}`) },
    inputReply(e) { this.setData({ replyText: e.detail.value }) },
    reply(e) {
      const text = this.data.replyText.trim()
      if (!text) return undefined
      return run(this, async () => {
        const done = await api.call('reply', { params: { topic_id: e.currentTarget.dataset.id }, body: { text } })
        this.setData({ message: done.message, replyText: '' })
      })
    },
  },
})
