/** A closed-loop load generator speaking MCP over raw HTTP (undici), for the benchmarks. */
import { Pool } from 'undici'

export interface LoadResult {
  requests: number
  seconds: number
  /** Requests per second. */
  throughput: number
  p50: number
  p99: number
  errors: number
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

export class McpLoadClient {
  private readonly pool: Pool
  private readonly path: string
  private headers: Record<string, string> = { ...HEADERS }
  private nextId = 1
  private readonly tool: string
  /** Sent with every request (a bearer token, say). */
  private readonly extra: Record<string, string>

  /** `tool`: the echo tool's name at this endpoint (a virtual server's is namespaced). */
  constructor (url: string, connections: number, tool = 'echo', extra: Record<string, string> = {}) {
    const parsed = new URL(url)
    this.path = parsed.pathname
    this.pool = new Pool(parsed.origin, { connections, pipelining: 1 })
    this.tool = tool
    this.extra = extra
    this.headers = { ...HEADERS, ...extra }
  }

  /** How long the last `initialize` took to be answered (ms), `notifications/initialized` not counted. */
  initializeMs = 0

  async initialize (): Promise<void> {
    const started = performance.now()
    const res = await this.pool.request({
      path: this.path,
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })
    })
    await res.body.text()
    this.initializeMs = performance.now() - started
    const sessionId = res.headers['mcp-session-id']
    if (res.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize failed: ${res.statusCode}`)
    this.headers = { ...HEADERS, ...this.extra, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
    const ack = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
    await ack.body.text()
  }

  async call (): Promise<boolean> {
    const id = this.nextId++
    const res = await this.pool.request({
      path: this.path,
      method: 'POST',
      headers: this.headers,
      body: `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${this.tool}","arguments":{"text":"benchmark payload"}}}`
    })
    const text = await res.body.text()
    return res.statusCode === 200 && text.includes('benchmark payload')
  }

  /** One tools/list; true when the answer names the echo tool. */
  async list (): Promise<boolean> {
    const res = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body: `{"jsonrpc":"2.0","id":${this.nextId++},"method":"tools/list"}` })
    const text = await res.body.text()
    return res.statusCode === 200 && text.includes(`"${this.tool}"`)
  }

  async run (requests: number, concurrency: number): Promise<LoadResult> {
    return await runLoad(async () => await this.call(), requests, concurrency)
  }

  /** Ends the session (DELETE; its upstream resources, a stdio child say, go with it), then the pool. */
  async close (): Promise<void> {
    if (this.headers['mcp-session-id'] !== undefined) {
      const res = await this.pool.request({ path: this.path, method: 'DELETE', headers: this.headers }).catch(() => undefined)
      await res?.body.text()
    }
    await this.pool.close()
  }
}

/** A closed loop: `concurrency` workers each calling `call` until `requests` were made. */
export async function runLoad (call: () => Promise<boolean>, requests: number, concurrency: number): Promise<LoadResult> {
  const latencies = new Float64Array(requests)
  let issued = 0
  let errors = 0
  const started = process.hrtime.bigint()
  const worker = async (): Promise<void> => {
    while (issued < requests) {
      const index = issued++
      const t0 = process.hrtime.bigint()
      const ok = await call().catch(() => false)
      latencies[index] = Number(process.hrtime.bigint() - t0) / 1e6
      if (!ok) errors++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  latencies.sort()
  return {
    requests,
    seconds,
    throughput: requests / seconds,
    p50: latencies[Math.floor(requests * 0.5)] ?? 0,
    p99: latencies[Math.floor(requests * 0.99)] ?? 0,
    errors
  }
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
