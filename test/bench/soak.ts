/**
 * Soak check (`npm run soak -- --minutes N`, default 10): session churn against one gateway with
 * short timeouts. Workers initialize, call tools, and abandon their sessions without DELETE; the
 * gateway must reap them. RSS and live sessions are sampled every 10 s; at the end both must be
 * back within 10% of their level after warm-up (the first sample after one minute).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, workers: { type: 'string', default: '16' } } })
const minutes = Number(values.minutes)
const workers = Number(values.workers)
const SERVERS = fileURLToPath(new URL('./soak-servers.js', import.meta.url))

const child = fork(SERVERS, [], { stdio: 'inherit' })
const [ready] = await once(child, 'message') as [{ url: string }]
const url = new URL(ready.url)
const pool = new Pool(url.origin, { connections: workers * 2 })
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

async function sample (): Promise<{ rss: number, sessions: number, streams: number, events: number }> {
  child.send('sample')
  const [message] = await once(child, 'message') as [{ rss: number, sessions: number, streams: number, events: number }]
  return message
}

let stop = false
let calls = 0
let errors = 0
async function worker (): Promise<void> {
  while (!stop) {
    try {
      const init = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: HEADERS,
        body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'soak', version: '1' } } })
      })
      await init.body.text()
      const headers = { ...HEADERS, 'mcp-session-id': init.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-11-25' }
      for (let i = 1; i <= 3; i++) {
        const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'countdown', arguments: { from: 3, delayMs: 0 }, _meta: { progressToken: i } } }) })
        const text = await res.body.text()
        if (res.statusCode !== 200 || !text.includes('liftoff')) errors++
        calls++
      }
      // Abandoned: no DELETE.
    } catch {
      errors++
    }
  }
}

const started = Date.now()
const running = Array.from({ length: workers }, worker)
const samples: Array<{ at: number, rss: number, sessions: number, streams: number, events: number }> = []
while (Date.now() - started < minutes * 60_000) {
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  const s = await sample()
  samples.push({ at: Math.round((Date.now() - started) / 1000), ...s })
  process.stdout.write(`t=${samples.at(-1)?.at}s rss=${(s.rss / 2 ** 20).toFixed(1)}MiB sessions=${s.sessions} logStreams=${s.streams} logEvents=${s.events} calls=${calls} errors=${errors}\n`)
}
stop = true
await Promise.all(running)
const warm = samples.find((s) => s.at >= 60) ?? samples[0]
const last = samples.at(-1)
await pool.close()
child.send('exit')
if (warm === undefined || last === undefined) throw new Error('run longer than one sample')
const rssRatio = last.rss / warm.rss
const sessionRatio = (last.sessions + 1) / (warm.sessions + 1)
process.stdout.write(`\nsoak ${minutes} min, ${workers} workers: ${calls} calls, ${errors} errors\n` +
  `RSS after warm-up ${(warm.rss / 2 ** 20).toFixed(1)} MiB -> end ${(last.rss / 2 ** 20).toFixed(1)} MiB (${rssRatio.toFixed(2)}x); ` +
  `live sessions ${warm.sessions} -> ${last.sessions}\n`)
const ok = rssRatio <= 1.1 && sessionRatio <= 1.1 && errors === 0
process.stdout.write(ok ? 'PASS: back within 10% of the warmed-up level\n' : 'FAIL: grew past 10% of the warmed-up level, or errors\n')
process.exitCode = ok ? 0 : 1
