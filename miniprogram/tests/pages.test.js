// The pages the journey does not pass through: the page the screen's mini-program code opens
// (WeChat hands it the code's scene), and the web-view page a topic's discussion opens in.
const { install, backend } = require('./wx.js')
const { tool, page } = require('./helpers.js')
const config = require('../config.js')
const api = require('../utils/api.js')

config.apiBase = `${backend.url}/api/v1`

test('opened by the WeChat camera from the screen\'s code, the check-in page checks the member in', async () => {
  install('mPages0001')
  api.forget()
  await api.call('bind', { body: { student_no: '2023001', name: '张明' } })
  const { scene } = tool('scene', '主题党日')
  const checkin = page('checkin')
  await checkin.instance.onLoad({ scene: encodeURIComponent(scene.slice(3)) }) // as WeChat passes it
  expect(checkin.dom.textContent).toContain('签到成功')
  expect(tool('facts', '2023001').checkins).toEqual(['mini_scan'])
  await checkin.instance.onLoad({ scene: encodeURIComponent(scene.slice(3)) })
  expect(checkin.dom.textContent).toContain('不用重复签到')
  checkin.instance.inputCode({ detail: { value: '000 000' } })
  await checkin.instance.sendCode()
  expect(checkin.data.error).toMatch(/签到码不对|已签到|不用重复签到/)
})

test('a topic\'s discussion opens in a web-view', () => {
  const web = page('web')
  web.instance.onLoad({ url: encodeURIComponent('https://dangjian.example.edu.cn/t/abc') })
  expect(web.data.url).toBe('https://dangjian.example.edu.cn/t/abc')
  expect(web.dom.innerHTML).toContain('web-view')
})
