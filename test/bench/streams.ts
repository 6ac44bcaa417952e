/**
 * Stream benchmarks: replaying 10,000 logged events to a client that reconnects with
 * `Last-Event-ID`, and the gateway's memory per open idle SSE stream with 2,000 streams open.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Pool } from 'undici'
import { median } from './load.ts'

interface Server {
  child: ChildProcess
  url: string
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

/** A 2025 session on `pool` (initialize, then initialized): the headers its requests carry. */
export async function openSession (pool: Pool, path: string): Promise<Record<string, string>> {
  const res = await pool.request({
    path,
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })
  })
  await res.body.text()
  const headers = { ...HEADERS, 'mcp-session-id': res.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-11-25' }
  const ack = await pool.request({ path, method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  await ack.body.text()
  return headers
}

async function rssOf (server: Server): Promise<number> {
  server.child.send('cpu')
  const [message] = await once(server.child, 'message') as [{ rss: number }]
  return message.rss
}

function countEvents (text: string): number {
  return text.split('\n\n').filter((block) => block.includes('data: {')).length
}

export async function benchReplay (gateway: Server, events = 10_000, rounds = 5): Promise<void> {
  const url = new URL(gateway.url)
  const pool = new Pool(url.origin, { connections: 4 })
  const headers = await openSession(pool, url.pathname)
  const times: number[] = []
  for (let round = 0; round < rounds; round++) {
    const res = await pool.request({
      path: url.pathname,
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: round + 1, method: 'tools/call', params: { name: 'flood', arguments: { count: events }, _meta: { progressToken: 'b' } } })
    })
    const text = await res.body.text()
    const primingId = /id: (\S+)\ndata: \n/.exec(text)?.[1]
    if (primingId === undefined || countEvents(text) !== events + 1) throw new Error('flood stream incomplete')
    const started = process.hrtime.bigint()
    const replay = await pool.request({ path: url.pathname, method: 'GET', headers: { ...headers, accept: 'text/event-stream', 'last-event-id': primingId } })
    const replayed = await replay.body.text()
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    if (countEvents(replayed) !== events + 1) throw new Error(`replay incomplete: ${countEvents(replayed)}`)
    times.push(ms)
  }
  await pool.close()
  const ms = median(times)
  process.stdout.write(`\n## Replay after reconnect (${rounds} rounds, median)\n\n` +
    `${events.toLocaleString('en-US')} events + answer replayed in ${ms.toFixed(1)} ms ` +
    `(${Math.round((events + 1) / (ms / 1000)).toLocaleString('en-US')} events/s; target < 100 ms)\n`)
}

export async function benchIdleStreams (gateway: Server, streams = 2000): Promise<void> {
  const url = new URL(gateway.url)
  const pool = new Pool(url.origin, { connections: streams + 8 })
  // Sessions first (their records are not what we measure), then the streams.
  const sessions: Array<Record<string, string>> = []
  for (let i = 0; i < streams; i++) sessions.push(await openSession(pool, url.pathname))
  if (typeof global.gc === 'function') global.gc()
  await new Promise((resolve) => setTimeout(resolve, 500))
  const before = await rssOf(gateway)
  const open: Array<Promise<unknown>> = []
  const bodies: Array<{ destroy: () => void }> = []
  for (const headers of sessions) {
    const res = await pool.request({ path: url.pathname, method: 'GET', headers: { ...headers, accept: 'text/event-stream' } })
    if (res.statusCode !== 200) throw new Error(`GET stream refused: ${res.statusCode}`)
    res.body.on('data', () => {})
    bodies.push(res.body)
    open.push(once(res.body, 'close').catch(() => {}))
  }
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const after = await rssOf(gateway)
  const perStream = (after - before) / streams
  process.stdout.write(`\n## Idle SSE streams\n\n${streams} open GET streams: gateway RSS ${(before / 2 ** 20).toFixed(1)} MiB -> ${(after / 2 ** 20).toFixed(1)} MiB, ` +
    `${(perStream / 1024).toFixed(1)} KiB per stream (client socket, upstream socket and stream state; target < 30 KiB)\n`)
  for (const body of bodies) body.destroy()
  await Promise.all(open)
  await pool.destroy()
}
