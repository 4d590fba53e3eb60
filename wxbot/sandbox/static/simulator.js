// The simulator: every action goes through POST /sandbox/phone, which plays WeChat towards /wechat.
// Everything the account sends (passive replies and later pushes) is read from /sandbox/messages.
(function () {
  const $ = (id) => document.getElementById(id);
  const chat = $("chat"), userSelect = $("user");
  let lastId = 0;

  async function call(url, body) {
    const res = await fetch(url, body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    return res.json();
  }
  // WeChat shows <a href="...">title</a> in a text message as a link; anything else is plain text.
  const LINK = /<a href="([^"]+)">([^<]*)<\/a>/g;
  function appendText(div, text) {
    let at = 0;
    for (const m of text.matchAll(LINK)) {
      div.appendChild(document.createTextNode(text.slice(at, m.index)));
      const a = document.createElement("a"); a.href = m[1]; a.target = "_blank";
      a.textContent = m[2].replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
      div.appendChild(a); at = m.index + m[0].length;
    }
    div.appendChild(document.createTextNode(text.slice(at)));
  }
  function bubble(cls, text, channel) {
    const div = document.createElement("div");
    div.className = "bubble " + cls;
    if (channel) { const c = document.createElement("span"); c.className = "channel"; c.textContent = channel; div.appendChild(c); }
    if (cls === "account") appendText(div, text); else div.appendChild(document.createTextNode(text));
    chat.appendChild(div); chat.scrollTop = chat.scrollHeight;
    return div;
  }
  const CHANNELS = {reply: "", customer_service: "客服消息", template: "模板消息", subscribe: "订阅通知", mass: "群发", preview: "群发预览"};
  function showMessage(m) {
    const c = m.content || {};
    if (m.channel === "user") { bubble("me", c.content); return; }
    const label = m.channel in CHANNELS ? CHANNELS[m.channel] : m.channel;
    const articles = c.articles || (c.news && c.news.articles);
    if (articles && articles.length) {
      const div = bubble("account", "", label);
      for (const a of articles) {
        const link = document.createElement("a"); link.className = "article"; link.href = a.url; link.target = "_blank";
        const t = document.createElement("strong"); t.textContent = a.title; link.appendChild(t);
        link.appendChild(document.createTextNode(a.description || ""));
        div.appendChild(link);
      }
    } else if (c.content) {
      bubble("account", c.content, label);
    } else if (c.template_id) {
      const lines = Object.entries(c.data || {}).map(([k, v]) => k + "：" + (v.value || v));
      bubble("account", lines.join("\n") || c.template_id, label);
    } else {
      bubble("account", JSON.stringify(c), label);
    }
  }
  async function poll() {
    const openid = userSelect.value;
    if (!openid) return;
    const rows = await call("messages?include_user=1&touser=" + encodeURIComponent(openid) + "&after=" + lastId);
    for (const m of rows) { lastId = Math.max(lastId, m.id); showMessage(m); }
  }
  async function act(action, extra, echo) {
    const openid = userSelect.value;
    if (!openid) { bubble("system", "请先创建一个用户"); return; }
    const reply = await call("phone", Object.assign({openid, action}, extra || {}));
    if (reply.error) { bubble("system", reply.error); return; }
    if (reply.kind === "error") bubble("system", "服务返回 " + reply.status + "，微信会显示“该公众号暂时无法提供服务”");
    if (reply.kind === "blocked") bubble("system", reply.text);
    if (action === "follow" || action === "unfollow") { await loadUsers(openid); return; }
    await poll();
  }
  async function loadUsers(select) {
    const users = await call("users");
    userSelect.innerHTML = "";
    for (const u of users) {
      const o = document.createElement("option"); o.value = u.openid;
      o.textContent = u.nickname + (u.subscribed ? "" : "（未关注）") + " · " + u.openid.slice(-6);
      userSelect.appendChild(o);
    }
    if (select) userSelect.value = select;
    chat.innerHTML = ""; lastId = 0; await poll();
  }
  async function loadQRCodes() {
    const list = $("qrcodes"); list.innerHTML = "";
    for (const qr of await call("qrcodes")) {
      const li = document.createElement("li"); li.title = "扫一扫";
      const img = document.createElement("img"); img.src = qr.image; img.alt = qr.scene; li.appendChild(img);
      li.appendChild(document.createTextNode(qr.scene));
      li.onclick = () => act("scan", {scene: qr.scene}, "[扫码] " + qr.scene);
      list.appendChild(li);
    }
    if (!list.children.length) list.innerHTML = "<li>暂无</li>";
  }
  $("compose").onsubmit = (e) => { e.preventDefault(); const t = $("text").value.trim(); if (t) { $("text").value = ""; act("text", {text: t}, t); } };
  $("new-user").onclick = async () => { const r = await call("users", {nickname: $("nickname").value}); $("nickname").value = ""; await loadUsers(r.openid); };
  $("follow").onclick = () => act("follow", {}, "[关注公众号]");
  $("unfollow").onclick = () => act("unfollow", {}, "[取消关注]");
  $("image").onclick = () => act("image", {}, "[图片]");
  $("allow-subscription").onclick = () => act("allow_subscription", {}, "[允许订阅通知]");
  $("refresh-qr").onclick = loadQRCodes;
  setInterval(loadQRCodes, 5000);  // check-in codes rotate every few seconds
  document.querySelectorAll("[data-say]").forEach((b) => b.onclick = () => act("text", {text: b.dataset.say}, b.dataset.say));
  userSelect.onchange = () => { chat.innerHTML = ""; lastId = 0; poll(); };
  document.querySelectorAll("[data-toggle]").forEach((b) => b.onclick = () => {
    const sub = b.nextElementSibling; const open = sub.hidden;
    document.querySelectorAll(".submenu").forEach((s) => s.hidden = true); sub.hidden = !open; });
  document.querySelectorAll("[data-key]").forEach((b) => b.onclick = () => {
    document.querySelectorAll(".submenu").forEach((s) => s.hidden = true);
    act("click", {key: b.dataset.key}, "[菜单] " + b.textContent.trim()); });
  setInterval(poll, 2000);
  loadUsers(); loadQRCodes();
})();
