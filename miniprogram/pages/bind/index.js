// First use: bind this WeChat to the roster (学号 and 姓名, the chat's rules and limits).
const { api, run } = require('../../utils/page.js')

Component({
  data: { loading: false, error: '', studentNo: '', name: '', done: '' },
  methods: {
    onLoad() {},
    inputStudentNo(e) { this.setData({ studentNo: e.detail.value.trim() }) },
    inputName(e) { this.setData({ name: e.detail.value.trim() }) },
    submit() {
      if (!this.data.studentNo || !this.data.name) {
        this.setData({ error: '请填写学号和姓名。' })
        return undefined
      }
      return run(this, async () => {
        const me = await api.call('bind', { body: { student_no: this.data.studentNo, name: this.data.name } })
        this.setData({ done: `绑定成功：${me.name}（${me.branch}）` })
        if (wx.switchTab) wx.switchTab({ url: '/pages/index/index' })
      })
    },
  },
})
