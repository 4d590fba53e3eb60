// The one file a university edits: the API's address (HTTPS, on the mini-program's request domain
// list) and, when notices may arrive as subscription messages, the template id from the
// mini-program's 订阅消息 settings (the same as miniprogram.subscribe_template_id on the server).
// The AppID is in project.config.json, where WeChat DevTools reads it.
module.exports = {
  apiBase: 'https://dangjian.example.edu.cn/api/v1',
  subscribeTemplateId: '',
}
