module.exports = async function stopBackend() {
  const server = globalThis.wxbotBackend
  if (server) {
    try { process.kill(-server.pid, 'SIGTERM') } catch (e) { /* gone already */ }
  }
}
