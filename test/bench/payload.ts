/**
 * The independent harness's two heavy scenarios (../shared/bench: `payload` and `stream`), direct,
 * through the plain @fastify/http-proxy forwarder and through the gateway, in interleaved rounds:
 * - 1 MiB results: `tools/call payload {kib: 1024}` at concurrency 4, the upstream answering
 *   with SSE; MiB/s and the proxy's CPU per result.
 * - a 10,000-notification stream: one `tools/call flood {count: 10000}` with a progress token;
 *   the time to its final response, notifications received (zero loss), messages per second.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Pool } from 'undici'
import { median } from './load.ts'
import { openSession } from './streams.ts'

interface Server {
  child: ChildProcess
  url: string
}

export interface PayloadTarget {
  name: string
  server: Server
}

const KIB = 1024
const NOTIFICATIONS = 10_000

async function cpuOf (server: Server): Promise<number> {
  server.child.send('cpu')
  const [message] = await once(server.child, 'message') as [{ cpu: number }]
  return message.cpu
}

interface Sample {
  /** payload: MiB/s; stream: messages/s. */
  rate: number
  /** CPU µs of the measured process per result (payload) or per notification (stream). */
  cpu: number
  /** stream: notifications that reached the client. */
  received: number
}

async function payload (target: PayloadTarget, calls: number, concurrency: number): Promise<Sample> {
  const url = new URL(target.server.url)
  const pool = new Pool(url.origin, { connections: concurrency })
  const headers = await openSession(pool, url.pathname)
  let id = 1
  let bad = 0
  const one = async (): Promise<void> => {
    const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'payload', arguments: { kib: KIB } } }) })
    const text = await res.body.text()
    if (res.statusCode !== 200 || text.length < KIB * 1024) bad++
  }
  await one()
  const before = await cpuOf(target.server)
  const started = process.hrtime.bigint()
  let issued = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < calls) {
      issued++
      await one()
    }
  }))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = (await cpuOf(target.server)) - before
  await pool.close()
  if (bad > 0) throw new Error(`${target.name}: ${bad} payload results incomplete`)
  return { rate: (calls * KIB / 1024) / seconds, cpu: cpu / calls, received: 0 }
}

async function stream (target: PayloadTarget): Promise<Sample> {
  const url = new URL(target.server.url)
  const pool = new Pool(url.origin, { connections: 1 })
  const headers = await openSession(pool, url.pathname)
  const before = await cpuOf(target.server)
  const started = process.hrtime.bigint()
  const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'flood', arguments: { count: NOTIFICATIONS }, _meta: { progressToken: 'p' } } }) })
  // Counted as it arrives (never the whole body in memory): progress events, then the answer.
  let received = 0
  let tail = ''
  for await (const chunk of res.body) {
    const text = tail + (chunk as Buffer).toString('utf8')
    let at = text.indexOf('notifications/progress')
    let last = 0
    while (at !== -1) {
      received++
      last = at + 1
      at = text.indexOf('notifications/progress', last)
    }
    tail = text.slice(Math.max(last, text.length - 40))
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = (await cpuOf(target.server)) - before
  await pool.close()
  return { rate: (NOTIFICATIONS + 1) / seconds, cpu: cpu / NOTIFICATIONS, received }
}

export async function benchPayloads (targets: PayloadTarget[], rounds: number): Promise<void> {
  const payloads = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
  const streams = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) payloads.get(target.name)?.push(await payload(target, 40, 4))
    for (const target of targets) streams.get(target.name)?.push(await stream(target))
  }
  const stat = (samples: Map<string, Sample[]>, name: string, key: keyof Sample): number => median((samples.get(name) ?? []).map((s) => s[key]))
  process.stdout.write(`\n## 1 MiB results and a 10,000-notification stream (${rounds} interleaved rounds, medians; upstream answers with SSE)\n\n`)
  process.stdout.write('| target | 1 MiB results: MiB/s | CPU µs per result (that process) | stream: msgs/s | notifications received | CPU µs per notification |\n|---|---|---|---|---|---|\n')
  for (const { name } of targets) {
    process.stdout.write(`| ${name} | ${stat(payloads, name, 'rate').toFixed(1)} | ${stat(payloads, name, 'cpu').toFixed(0)} | ${stat(streams, name, 'rate').toFixed(0)} | ${Math.min(...(streams.get(name) ?? []).map((s) => s.received))} of ${NOTIFICATIONS} | ${stat(streams, name, 'cpu').toFixed(1)} |\n`)
  }
  const ratio = (samples: Map<string, Sample[]>, key: keyof Sample, a: string, b: string): string => (stat(samples, a, key) / stat(samples, b, key)).toFixed(2)
  process.stdout.write(`ratios: 1 MiB results gateway/http-proxy CPU ${ratio(payloads, 'cpu', 'gateway', 'http-proxy')}x, throughput ${ratio(payloads, 'rate', 'gateway', 'http-proxy')}x; ` +
    `stream gateway/direct ${ratio(streams, 'rate', 'gateway', 'direct')}x, http-proxy/direct ${ratio(streams, 'rate', 'http-proxy', 'direct')}x\n\n`)
}
