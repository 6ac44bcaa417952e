/**
 * `npm run load` (not in CI): 1,000 concurrent sessions against one gateway on this machine, a
 * mix of tool calls (JSON-sized answers), streamed calls with progress, and idle sessions holding
 * their GET stream open. Reports throughput, p50/p99, errors, and the gateway's RSS and
 * event-loop delay.
 *
 * Options: --sessions N (1000), --seconds N (60).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '60' } } })
const SESSIONS = Number(values.sessions)
const SECONDS = Number(values.seconds)
const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url))
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

const upstream = fork(SERVERS, ['upstream'], { stdio: 'inherit' })
const [up] = await once(upstream, 'message') as [{ url: string }]
const gateway = fork(SERVERS, ['gateway', up.url], { stdio: 'inherit' })
const [gw] = await once(gateway, 'message') as [{ url: string }]
const stats = async (): Promise<{ rss: number, loopDelayP50: number, loopDelayP99: number, loopDelayMax: number }> => {
  gateway.send('stats')
  const [message] = await once(gateway, 'message') as [{ rss: number, loopDelayP50: number, loopDelayP99: number, loopDelayMax: number }]
  return message
}
const dispatcher = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 30_000 })
const url = gw.url

async function post (headers: Record<string, string>, body: string): Promise<{ status: number, text: string, session?: string }> {
  const res = await request(url, { method: 'POST', headers, body, dispatcher })
  const text = await res.body.text()
  const session = res.headers['mcp-session-id']
  return { status: res.statusCode, text, session: typeof session === 'string' ? session : undefined }
}

async function open (): Promise<Record<string, string>> {
  const init = await post(HEADERS, JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'load', version: '1' } } }))
  if (init.status !== 200 || init.session === undefined) throw new Error(`initialize: ${init.status}`)
  const headers = { ...HEADERS, 'mcp-session-id': init.session, 'mcp-protocol-version': '2025-11-25' }
  await post(headers, '{"jsonrpc":"2.0","method":"notifications/initialized"}')
  return headers
}

const latencies: number[] = []
let errors = 0
let stop = false
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function caller (headers: Record<string, string>, streamed: boolean): Promise<void> {
  let id = 1
  while (!stop) {
    const body = streamed
      ? `{"jsonrpc":"2.0","id":${id++},"method":"tools/call","params":{"name":"countdown","arguments":{"from":5,"delayMs":20},"_meta":{"progressToken":${id}}}}`
      : `{"jsonrpc":"2.0","id":${id++},"method":"tools/call","params":{"name":"echo","arguments":{"text":"load"}}}`
    const started = performance.now()
    try {
      const res = await post(headers, body)
      if (res.status !== 200 || !res.text.includes(streamed ? 'liftoff' : '"load"')) errors++
      else latencies.push(performance.now() - started)
    } catch {
      errors++
    }
    await sleep(50 + Math.random() * 100)
  }
}

async function idle (headers: Record<string, string>): Promise<void> {
  const res = await request(url, { method: 'GET', headers: { ...headers, accept: 'text/event-stream' }, dispatcher })
  if (res.statusCode !== 200) errors++
  res.body.resume()
  while (!stop) await sleep(200)
  res.body.destroy()
}

process.stdout.write(`opening ${SESSIONS} sessions...\n`)
const sessions: Array<Record<string, string>> = []
for (let i = 0; i < SESSIONS; i += 50) sessions.push(...await Promise.all(Array.from({ length: Math.min(50, SESSIONS - i) }, open)))
await stats()
const started = performance.now()
const running = sessions.map(async (headers, i) => {
  const role = i % 10
  if (role < 4) await caller(headers, false)
  else if (role < 6) await caller(headers, true)
  else await idle(headers)
})
const samples: Array<{ rss: number, loopDelayP99: number, loopDelayMax: number }> = []
while (performance.now() - started < SECONDS * 1000) {
  await sleep(5000)
  samples.push(await stats())
}
stop = true
await Promise.all(running)
const seconds = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const pct = (p: number): number => latencies[Math.floor(latencies.length * p)] ?? 0
const peakRss = Math.max(...samples.map((s) => s.rss))
const loopP99 = samples.map((s) => s.loopDelayP99).sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0
const loopMax = Math.max(...samples.map((s) => s.loopDelayMax))
process.stdout.write(`\nload: ${SESSIONS} sessions (40% calling echo, 20% streamed countdowns with progress, 40% idle with a GET stream open), ${seconds.toFixed(0)} s\n` +
  `completed calls ${latencies.length} (${(latencies.length / seconds).toFixed(0)}/s), errors ${errors}\n` +
  `latency p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms (streamed calls include 100 ms of upstream work)\n` +
  `gateway RSS peak ${(peakRss / 2 ** 20).toFixed(0)} MiB, event-loop delay p99 (median of 5 s windows) ${loopP99.toFixed(1)} ms, max ${loopMax.toFixed(1)} ms\n`)
await dispatcher.close()
for (const child of [gateway, upstream]) {
  child.send('exit')
  await once(child, 'exit')
}
