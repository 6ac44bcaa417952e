/**
 * Soak check (`npm run soak -- --minutes N`, default 10): session churn against one gateway with
 * short timeouts. Workers initialize, call tools, and abandon their sessions without DELETE; the
 * gateway must reap them. RSS and live sessions are sampled every 10 s; the median of the last
 * minute must be within 10% of the median after the first (warm-up) minute, and the RSS slope is
 * reported.
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
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}
// Level after warm-up: the median of every sample after the first minute (robust to GC and sweep
// timing); the end: the median of the last minute. A least-squares slope shows any steady growth.
const steady = samples.filter((s) => s.at >= 60)
const end = steady.filter((s) => s.at >= (steady.at(-1)?.at ?? 0) - 60)
if (steady.length < 3 || end.length === 0) throw new Error('run at least two minutes')
const slope = (ys: number[]): number => {
  const xs = steady.map((s) => s.at / 60)
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length
  const my = ys.reduce((a, b) => a + b, 0) / ys.length
  const num = xs.reduce((sum, x, i) => sum + (x - mx) * ((ys[i] as number) - my), 0)
  const den = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0)
  return num / den
}
const rssLevel = median(steady.map((s) => s.rss))
const rssEnd = median(end.map((s) => s.rss))
const sessionLevel = median(steady.map((s) => s.sessions))
const sessionEnd = median(end.map((s) => s.sessions))
const rssSlope = slope(steady.map((s) => s.rss / 2 ** 20))
process.stdout.write(`\nsoak ${minutes} min, ${workers} workers: ${calls} calls, ${errors} errors\n` +
  `RSS: level after warm-up ${(rssLevel / 2 ** 20).toFixed(1)} MiB, last minute ${(rssEnd / 2 ** 20).toFixed(1)} MiB (${(rssEnd / rssLevel).toFixed(2)}x), slope ${rssSlope.toFixed(2)} MiB/min\n` +
  `live sessions: level ${sessionLevel}, last minute ${sessionEnd} (${((sessionEnd + 1) / (sessionLevel + 1)).toFixed(2)}x)\n`)
const ok = rssEnd <= rssLevel * 1.1 && sessionEnd <= sessionLevel * 1.1 + 50 && errors === 0
process.stdout.write(ok ? 'PASS: back within 10% of the warmed-up level\n' : 'FAIL: grew past 10% of the warmed-up level, or errors\n')
process.exitCode = ok ? 0 : 1
