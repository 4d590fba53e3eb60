// 答题: today's quiz (the first started each day is scored, chat and mini-program together), tappable
// options, "第 n/N 题", the verdict with its explanation, the wrong-answer book, contests with their clock.
const { api, run } = require('../../utils/page.js')

const LETTERS = 'ABCDEF'

Component({
  data: {
    loading: false, error: '', attempt: null, question: null, chosen: [], answered: null, result: null,
    message: '', book: null, contests: [], clock: '',
  },
  methods: {
    onLoad() {
      return run(this, async () => {
        const [book, contests] = await Promise.all([api.call('quizBook'), api.call('contests')])
        this.setData({ book, contests: contests.items })
      })
    },
    show(attempt) {
      this.setData({ attempt, question: attempt.question, chosen: [], answered: null, result: null,
        message: attempt.message })
      this.startClock(attempt.ends_at)
    },
    // A timed contest's clock: the time left, from the server's deadline (an answer after it is not counted).
    startClock(endsAt) {
      this.stopClock()
      if (!endsAt) { this.setData({ clock: '' }); return }
      const end = new Date(endsAt.endsWith('Z') || endsAt.includes('+') ? endsAt : `${endsAt}Z`).getTime()
      const tick = () => {
        const left = Math.max(0, Math.round((end - Date.now()) / 1000))
        this.setData({ clock: left ? `剩余 ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` : '时间到' })
        if (!left) this.stopClock()
      }
      tick()
      this.clockTimer = setInterval(tick, 1000)
    },
    stopClock() { if (this.clockTimer) clearInterval(this.clockTimer); this.clockTimer = null },
    onUnload() { this.stopClock() },
    startDaily() { return run(this, async () => this.show(await api.call('quizDaily'))) },
    startReview() { return run(this, async () => this.show(await api.call('quizReview'))) },
    startContest(e) {
      const id = e.currentTarget.dataset.id
      return run(this, async () => this.show(await api.call('contestStart', { params: { contest_id: id } })))
    },
    choose(e) {
      if (this.data.answered) return undefined
      const index = Number(e.currentTarget.dataset.index)
      if (this.data.question.kind === 'multiple') {
        const chosen = this.data.chosen.includes(index)
          ? this.data.chosen.filter((i) => i !== index) : [...this.data.chosen, index].sort()
        this.setData({ chosen })
        return undefined
      }
      this.setData({ chosen: [index] })
      return this.submit()
    },
    submit(skip) {
      const { attempt, question, chosen } = this.data
      const body = { attempt_id: attempt.id, position: question.number - 1 }
      if (skip === true) body.skip = true
      else body.answer = chosen.map((i) => LETTERS[i]).join('')
      return run(this, async () => {
        const answered = await api.call('quizAnswer', { body })
        this.setData({ answered, result: answered.result })
        if (answered.result) this.stopClock()
      })
    },
    skip() { return this.submit(true) },
    next() {
      const { answered } = this.data
      if (answered && answered.next) this.setData({ question: answered.next, chosen: [], answered: null })
    },
    exit() {
      return run(this, async () => {
        const result = await api.call('quizExit', { body: { attempt_id: this.data.attempt.id } })
        this.setData({ result, answered: null })
        this.stopClock()
      })
    },
  },
})
