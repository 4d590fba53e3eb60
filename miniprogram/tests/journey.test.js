// A member's first day in the mini-program, page by page, against the real backend: log in, bind,
// read today's material and earn the credit, answer the daily quiz, sign up for an event and check
// in by scanning the screen's code, post a 留言 and see the organiser's answer; each step checked in
// the backend's records.
const { install, backend } = require('./wx.js')
const { tool, page, text, tap, typed } = require('./helpers.js')
const config = require('../config.js')

config.apiBase = `${backend.url}/api/v1`
const MEMBER = { studentNo: '2023100', name: '陈晓红' }

let phone

beforeAll(() => { phone = install('mJourney0001') })

test('a member who is not bound yet is sent to the binding page, and binds', async () => {
  const home = page('index')
  await home.instance.onLoad()
  expect(phone.navigations).toContain('/pages/bind/index')
  const bind = page('bind')
  bind.instance.inputStudentNo(typed(MEMBER.studentNo))
  bind.instance.inputName(typed('不是本人'))
  await bind.instance.submit()
  expect(bind.data.error).toMatch(/学号和姓名/) // the chat's refusal, not a hint at the roster
  bind.instance.inputName(typed(MEMBER.name))
  await bind.instance.submit()
  expect(text(bind)).toContain(`绑定成功：${MEMBER.name}`)
})

test('home shows today\'s study, and reading it for the required time earns the credit once', async () => {
  const home = page('index')
  await home.instance.onLoad()
  expect(home.data.error).toBe('')
  expect(text(home)).toContain(`${MEMBER.name}，你好`)
  const material = home.data.studies[0]
  expect(text(home)).toContain(material.title)
  const before = tool('facts', MEMBER.studentNo).readings_credited // the demo school has a history
  const read = page('read')
  await read.instance.onLoad({ id: String(material.id) })
  expect(text(read)).toContain(material.title)
  expect(text(read)).toMatch(/满 3 秒计入学习记录/)
  await new Promise((r) => setTimeout(r, 3500))
  await read.instance.report()
  expect(text(read)).toContain('已计入学习记录')
  await new Promise((r) => setTimeout(r, 1100))
  await read.instance.report() // reading on: no second credit
  read.instance.onUnload()
  expect(tool('facts', MEMBER.studentNo).readings_credited).toBe(before + 1)
})

test('the daily quiz: tappable options, 第 n/N 题, verdicts, one scored quiz', async () => {
  const quiz = page('quiz')
  await quiz.instance.onLoad()
  await quiz.instance.startDaily()
  expect(quiz.data.error).toBe('')
  const total = quiz.data.question.total
  for (let n = 1; n <= total; n += 1) {
    expect(text(quiz)).toContain(`第 ${n}/${total} 题`)
    await quiz.instance.choose(tap({ index: 0 }))
    if (quiz.data.question.kind === 'multiple') await quiz.instance.submit()
    expect(quiz.data.answered.verdict).toBeTruthy()
    quiz.instance.next()
  }
  expect(text(quiz)).toMatch(/答对 \d+\/\d+ 题/)
  await quiz.instance.startDaily() // a second one today is practice
  expect(quiz.data.attempt.kind).toBe('practice')
  const facts = tool('facts', MEMBER.studentNo)
  expect(facts.daily_attempts).toBe(1)
  expect(facts.daily_finished).toBe(1)
  await quiz.instance.exit()
  // The demo school's contest: 10 minutes to answer, the clock on the page counts down from the server's deadline.
  const contest = quiz.data.contests.find((c) => c.title.includes('党史知识竞赛'))
  await quiz.instance.startContest(tap({ id: contest.id }))
  expect(quiz.data.attempt.kind).toBe('contest')
  expect(text(quiz)).toMatch(/剩余 (10:00|9:5\d)/)
  await quiz.instance.exit()
  quiz.instance.onUnload()
})

test('sign up for an event and check in by scanning the screen\'s code', async () => {
  const events = page('events')
  await events.instance.onLoad()
  const lecture = events.data.events.find((e) => e.signup_required && !e.registration)
  await events.instance.signUp(tap({ id: lecture.id }))
  expect(events.data.message).toMatch(/报名成功|候补/)
  expect(text(events)).toMatch(/已报名|候补/)
  const { scene } = tool('scene', '主题党日')
  // What wx.scanCode gives on an iPhone for the screen's mini-program code: the path, URL-encoded.
  phone.camera = encodeURIComponent(`pages/checkin/index?scene=${scene.slice(3)}`)
  await events.instance.scan()
  expect(events.data.error).toBe('')
  expect(events.data.message).toContain('签到成功')
  await events.instance.scan() // once more: still one check-in
  expect(events.data.message).toMatch(/不用重复签到/)
  expect(tool('facts', MEMBER.studentNo).checkins).toEqual(['mini_scan'])
  const meeting = events.data.events.find((e) => !e.checked_in_at && e.id !== lecture.id)
  events.instance.askLeave(tap({ id: meeting.id }))
  expect(text(events)).toContain('提交请假')
  events.instance.inputReason(typed('参加学院的专业实习'))
  await events.instance.leave(tap({ id: meeting.id }))
  expect(events.data.error).toBe('')
  expect(events.data.message).toMatch(/请假/)
})

test('a 留言 and the organiser\'s answer; the points are the backend\'s', async () => {
  const me = page('me')
  await me.instance.onLoad()
  me.instance.inputText(typed('希望多组织志愿服务活动'))
  await me.instance.post()
  expect(me.data.message).toContain('已收到你的留言')
  tool('answer', MEMBER.studentNo, '好的，下个月安排社区志愿服务')
  await me.instance.refresh()
  expect(text(me)).toContain('回复：好的，下个月安排社区志愿服务')
  expect(text(me)).toContain('我的发展') // 陈晓红 is an 入党积极分子 of the demo school
  const topic = me.data.topics[0]
  me.instance.inputReply(typed('结合专业做好科普志愿服务'))
  await me.instance.reply(tap({ id: topic.id }))
  expect(me.data.message).toMatch(/已发布到话题|审核/)
  me.instance.openTopic(tap({ url: topic.url }))
  expect(phone.navigations.pop()).toBe(`/pages/web/index?url=${encodeURIComponent(topic.url)}`)
  expect(me.data.development.upcoming.length).toBeGreaterThan(0)
  const facts = tool('facts', MEMBER.studentNo)
  expect(facts.posts).toContain('希望多组织志愿服务活动')
  expect(me.data.me.points_total).toBe(facts.points)
  expect(facts.points).toBeGreaterThan(0)
})
