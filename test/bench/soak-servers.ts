/**
 * The soak check's gateway, in a child process so its RSS is measured alone (the upstream, whose
 * SDK server holds far more per session, runs in a process of its own).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createGateway } from '../../examples/gateway/create-gateway.ts'

const upstream = fork(fileURLToPath(new URL('./servers.js', import.meta.url)), ['upstream'], { stdio: 'inherit', execArgv: [] })
const [ready] = await once(upstream, 'message') as [{ url: string }]
const app = await createGateway({
  upstream: ready.url,
  logLevel: false,
  // Short timeouts, so abandoned sessions are reaped many times over during the run.
  sessions: { idleTimeoutMs: 2000, sweepIntervalMs: 250 },
  streaming: { retention: { maxAgeMs: 5000 } }
})
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.on('message', async (message: unknown) => {
  if (message === 'sample') {
    // Forced (the soak forks this with --expose-gc): a sample is the retained heap.
    if (globalThis.gc === undefined) throw new Error('run with --expose-gc')
    globalThis.gc()
    const stats = await app.mcpEvents.stats()
    process.send?.({
      rss: process.memoryUsage.rss(),
      heap: process.memoryUsage().heapUsed,
      handles: process.getActiveResourcesInfo().length,
      sessions: await app.mcpSessions.count(),
      streams: stats.streams,
      events: stats.events
    })
  } else if (message === 'exit') {
    await app.close()
    upstream.send('exit')
    await once(upstream, 'exit')
    process.exit(0)
  }
})
process.send?.({ url: `${address}/mcp` })
