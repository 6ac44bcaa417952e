/**
 * Soak check (`npm run soak -- --minutes N`, default 10): steady mixed traffic against one gateway
 * with short timeouts. Churn workers initialize, make streamed tool calls and abandon their
 * sessions without DELETE (the gateway must reap them); steady workers keep one session each with
 * its GET stream open and call a tool in JSON-sized answers every 20 ms. RSS, heap, active handles
 * and live sessions are sampled every 10 s and judged by `soak-verdict.ts`.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { verdict } from './soak-verdict.ts'

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, workers: { type: 'string', default: '16' }, steady: { type: 'string', default: '4' } } })
const minutes = Number(values.minutes)
const workers = Number(values.workers)
const steadyWorkers = Number(values.steady)
const SERVERS = fileURLToPath(new URL('./soak-servers.js', import.meta.url))

// --expose-gc: the heap is sampled after a full collection, so a sample is what is retained
// rather than wherever V8's old space happens to be in its grow-and-collect cycle.
const child = fork(SERVERS, [], { stdio: 'inherit', execArgv: ['--expose-gc'] })
const [ready] = await once(child, 'message') as [{ url: string }]
const url = new URL(ready.url)
const pool = new Pool(url.origin, { connections: workers * 2 + steadyWorkers * 2 })
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

interface Sample { rss: number, heap: number, handles: number, sessions: number, streams: number, events: number }

async function sample (): Promise<Sample> {
  child.send('sample')
  const [message] = await once(child, 'message') as [Sample]
  return message
}

let stop = false
let calls = 0
let errors = 0
/** Opens a session; resolves with the headers of its later requests. */
async function openSession (name: string): Promise<Record<string, string>> {
  const init = await pool.request({
    path: url.pathname,
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name, version: '1' } } })
  })
  await init.body.text()
  return { ...HEADERS, 'mcp-session-id': init.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-11-25' }
}

async function worker (): Promise<void> {
  while (!stop) {
    try {
      const headers = await openSession('soak')
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

/** One long-lived session: its GET stream open the whole run, a call every 20 ms. */
async function steadyWorker (): Promise<void> {
  const headers = await openSession('soak-steady')
  const get = await pool.request({ path: url.pathname, method: 'GET', headers: { ...headers, accept: 'text/event-stream' } })
  get.body.resume()
  let id = 1
  while (!stop) {
    try {
      const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'echo', arguments: { text: 'steady' } } }) })
      const text = await res.body.text()
      if (res.statusCode !== 200 || !text.includes('steady')) errors++
      calls++
    } catch {
      errors++
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  get.body.destroy()
}

const started = Date.now()
const running = [...Array.from({ length: workers }, worker), ...Array.from({ length: steadyWorkers }, steadyWorker)]
const samples: Array<{ at: number } & Sample> = []
while (Date.now() - started < minutes * 60_000) {
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  const s = await sample()
  samples.push({ at: Math.round((Date.now() - started) / 1000), ...s })
  process.stdout.write(`t=${samples.at(-1)?.at}s rss=${(s.rss / 2 ** 20).toFixed(1)}MiB heap=${(s.heap / 2 ** 20).toFixed(1)}MiB handles=${s.handles} sessions=${s.sessions} logStreams=${s.streams} logEvents=${s.events} calls=${calls} errors=${errors}\n`)
}
stop = true
await Promise.all(running)
process.stdout.write(`\nsoak ${minutes} min, ${workers} churn + ${steadyWorkers} steady workers: `)
process.exitCode = verdict(samples, calls, errors, (line) => process.stdout.write(line)) ? 0 : 1
// The run ends by itself: the gateway process (and its upstream) stop, the connections close.
child.send('exit')
await once(child, 'exit')
await pool.close()
