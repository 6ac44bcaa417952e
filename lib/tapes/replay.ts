/**
 * `tape replay`: a tape served as an MCP upstream (Streamable HTTP, without sessions), so clients
 * and interceptors can be tried against real recorded traffic. A request is answered with the
 * recorded answer of the same method and params (`_meta` aside; the next unused one when the tape
 * has several, the last once all are used), else of the same method; the notifications the server
 * sent before that answer (progress, log messages) go first, on an SSE stream, with their recorded
 * timing divided by `speed`. Ids and progress tokens are the live request's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { canonicalJson } from '../audit/record.ts'
import { errorResponse, type JsonRpcMessage } from '../jsonrpc.ts'
import { exchangesOf, progressTokenOf, type RecordedExchange, type Tape } from './tape.ts'

export interface TapeServerOptions {
  /** Recorded delays are divided by this (0: none). @default 1 */
  speed?: number
  /** Largest request body, in bytes. @default 4 MiB */
  bodyLimit?: number
}

interface Candidates {
  all: RecordedExchange[]
  next: number
}

const NOT_ON_TAPE = -32601

function paramsKey (method: string, params: unknown): string {
  if (params === null || typeof params !== 'object') return `${method}\u0000${canonicalJson(params ?? null)}`
  const { _meta, ...rest } = params as Record<string, unknown>
  return `${method}\u0000${canonicalJson(rest)}`
}

/** What a request asks for, arguments aside: its method, and the tool, prompt or resource it names. */
function identityKey (method: string, params: unknown): string {
  const { name, uri } = (params ?? {}) as { name?: unknown, uri?: unknown }
  if (method === 'tools/call' || method === 'prompts/get') return `${method}\u0000${String(name)}`
  if (method === 'resources/read') return `${method}\u0000${String(uri)}`
  return method
}

export class TapeServer {
  private readonly byParams = new Map<string, Candidates>()
  private readonly byMethod = new Map<string, Candidates>()
  private readonly speed: number
  private readonly bodyLimit: number
  private server: Server | undefined

  constructor (tape: Tape, options: TapeServerOptions = {}) {
    this.speed = options.speed ?? 1
    this.bodyLimit = options.bodyLimit ?? 4 * 1024 * 1024
    for (const exchange of exchangesOf(tape)) {
      if (exchange.answer === undefined) continue
      add(this.byParams, paramsKey(exchange.request.method, exchange.request.params), exchange)
      add(this.byMethod, identityKey(exchange.request.method, exchange.request.params), exchange)
    }
  }

  async listen (port: number, host = '127.0.0.1'): Promise<string> {
    const server = this.server = createServer((req, res) => { void this.handle(req, res) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { resolve() })
    })
    const address = server.address() as AddressInfo
    return `http://${host}:${address.port}/mcp`
  }

  async close (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }

  /**
   * The recorded exchange that answers a request, if the tape has one: of the same params, else
   * of the same tool, prompt or resource (other arguments), else (for other methods) of the method.
   */
  find (method: string, params: unknown): RecordedExchange | undefined {
    return take(this.byParams.get(paramsKey(method, params))) ?? take(this.byMethod.get(identityKey(method, params)))
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'DELETE') return end(res, 200)
    if (req.method !== 'POST') return end(res, 405, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Method Not Allowed: a tape answers POST only' } })
    let body: unknown
    try {
      body = JSON.parse(await read(req, this.bodyLimit))
    } catch (err) {
      return end(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: `Parse error: ${(err as Error).message}` } })
    }
    const messages = (Array.isArray(body) ? body : [body]) as Array<{ id?: unknown, method?: unknown, params?: unknown }>
    const requests = messages.filter((m) => m !== null && typeof m === 'object' && typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number'))
    if (requests.length === 0) return end(res, 202)
    const answers = requests.map((request) => this.answer(request as { id: string | number, method: string, params?: unknown }))
    const before = answers.flatMap((answer) => answer.before)
    if (before.length === 0) return end(res, 200, Array.isArray(body) ? answers.map((a) => a.answer) : answers[0]?.answer)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    // A client that leaves ends the replay of its answer (and its timers).
    const gone = new Promise<void>((resolve) => { res.once('close', resolve) })
    let waited = 0
    for (const { delay, message } of before.sort((a, b) => a.delay - b.delay)) {
      waited = await this.wait(delay, waited, gone)
      if (res.destroyed) return
      res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)
    }
    for (const { answer, delay } of answers) {
      waited = await this.wait(delay, waited, gone)
      if (res.destroyed) return
      res.write(`event: message\ndata: ${JSON.stringify(answer)}\n\n`)
    }
    res.end()
  }

  private answer (request: { id: string | number, method: string, params?: unknown }): { answer: JsonRpcMessage, delay: number, before: Array<{ delay: number, message: JsonRpcMessage }> } {
    const found = this.find(request.method, request.params)
    if (found?.answer === undefined) return { answer: errorResponse(request.id, NOT_ON_TAPE, `the tape has no answer for ${request.method}`), delay: 0, before: [] }
    const token = progressTokenOf(request.params)
    const before = found.before.map(({ delay, message }) => ({ delay, message: withToken(message, token) }))
    return { answer: { ...found.answer.message, id: request.id } as JsonRpcMessage, delay: found.answer.delay, before }
  }

  /** Waits until `delay` (scaled) after the request, `waited` ms having passed already. */
  private async wait (delay: number, waited: number, gone: Promise<void>): Promise<number> {
    const target = this.speed === 0 ? 0 : delay / this.speed
    if (target > waited) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([gone, new Promise((resolve) => { timer = setTimeout(resolve, target - waited).unref() })])
      clearTimeout(timer)
    }
    return Math.max(target, waited)
  }
}

function add (map: Map<string, Candidates>, key: string, exchange: RecordedExchange): void {
  const found = map.get(key)
  if (found === undefined) map.set(key, { all: [exchange], next: 0 })
  else found.all.push(exchange)
}

function take (candidates: Candidates | undefined): RecordedExchange | undefined {
  if (candidates === undefined) return undefined
  const exchange = candidates.all[Math.min(candidates.next, candidates.all.length - 1)]
  candidates.next++
  return exchange
}

/** A progress notification carries the live request's token (the client knows no other). */
function withToken (message: JsonRpcMessage, token: unknown): JsonRpcMessage {
  const { method, params } = message as { method?: string, params?: Record<string, unknown> }
  if (method !== 'notifications/progress' || token === undefined) return message
  return { ...message, params: { ...params, progressToken: token } } as JsonRpcMessage
}

async function read (req: IncomingMessage, limit: number): Promise<string> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new Error(`the body is larger than ${limit} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function end (res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end()
    return
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
