/**
 * The Streamable HTTP side of the message-level upstream: an HTTP answer to a POST read into an
 * `UpstreamAnswer` (JSON body, SSE events, 202), and an HTTP failure turned into the gateway's
 * coded error, once. The exchange sees no upstream status codes or SSE framing on the POST path;
 * the era bridges, which are HTTP clients of their own upstream, read its answers themselves
 * (`readAnswer` in modern-upstream-for-legacy-clients.ts).
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { GatewayErrors } from '../errors.ts'
import { isRequest, toMessages } from '../jsonrpc.ts'
import { HEADER } from '../protocol.ts'
import { BodyTooLargeError, drain, readBounded } from '../relay/body.ts'
import { SseParser } from '../sse/parser.ts'
import { UpstreamEvents, type UpstreamAnswer } from './events.ts'
import type { UpstreamHttpRequest, UpstreamHttpResponse, UpstreamSend, UpstreamSessionRequest } from './types.ts'

const ERROR_BODY_LIMIT = 64 * 1024
/** The spec: visible ASCII only. Anything else would be copied into our upstream requests. */
const SESSION_ID = /^[\x21-\x7e]{1,1024}$/

export function mediaType (headers: IncomingHttpHeaders): string {
  const value = headers['content-type']
  if (value === undefined) return ''
  const semi = value.indexOf(';')
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase()
}

/** An SSE body as upstream events, as each event completes: never the whole body, never half an event. */
export function sseEvents (body: Readable): UpstreamEvents {
  let ended = false
  const events = new UpstreamEvents({
    pause: () => body.pause(),
    resume: () => { if (body.isPaused()) body.resume() },
    stop: () => { body.on('error', () => {}).destroy() }
  })
  const parser = new SseParser({ onEvent: (event) => events.push(event) })
  body.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk)
    } catch (err) {
      ended = true
      body.on('error', () => {}).destroy()
      events.end(err as Error)
    }
  })
  body.once('end', () => {
    ended = true
    try {
      parser.end()
      events.end()
    } catch (err) {
      events.end(err as Error)
    }
  })
  body.once('error', (err) => {
    ended = true
    events.end(err)
  })
  body.once('close', () => { if (!ended) events.end(new Error('upstream stream closed')) })
  return events
}

/**
 * An upstream's HTTP failure as the gateway's coded error (the body is consumed). 4xx other than
 * 401/403 and a 404 for a session are the client's to see: `UPSTREAM_REFUSED` carries them.
 */
export async function httpFailure (name: string, res: UpstreamHttpResponse, hadSession: boolean): Promise<Error> {
  // Metrics count a failed exchange by the upstream's status, as they count answered ones.
  return Object.assign(await failureOf(name, res, hadSession), { upstreamStatus: res.status })
}

async function failureOf (name: string, res: UpstreamHttpResponse, hadSession: boolean): Promise<Error> {
  if (res.status === 404 && hadSession) {
    // The upstream forgot the session (restart, expiry): the exchange forgets ours.
    drain(res.body)
    return new GatewayErrors.UPSTREAM_SESSION_GONE()
  }
  if (res.status === 401 || res.status === 403) {
    // Never hand the upstream's auth challenge to the client: these are the gateway's credentials.
    drain(res.body)
    return new GatewayErrors.UPSTREAM_AUTH(name, res.status)
  }
  if (res.status >= 500 || res.status < 400) {
    drain(res.body)
    return new GatewayErrors.UPSTREAM_ERROR(name, res.status)
  }
  // Other 4xx (400 bad version, 405 no GET stream, 406, 409, ...): the upstream's JSON-RPC body
  // if it sent one, else one made here.
  let raw: Buffer | undefined
  try {
    raw = await readBounded(res.body, ERROR_BODY_LIMIT)
  } catch {
    raw = undefined
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const allow = res.headers.allow
  if (typeof allow === 'string') headers.allow = allow
  let body: Buffer | undefined
  if (raw !== undefined && mediaType(res.headers) === 'application/json') {
    try {
      if (toMessages(JSON.parse(raw.toString('utf8'))).ok) body = raw
    } catch {}
  }
  body ??= Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `Upstream answered HTTP ${res.status}` } }))
  return Object.assign(new GatewayErrors.UPSTREAM_REFUSED(name, res.status), { reply: { status: res.status, headers, body } })
}

/** What `UPSTREAM_REFUSED` carries: the upstream's own 4xx, for the client. */
export interface RefusedReply {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export function refusedReply (err: unknown): RefusedReply | undefined {
  return (err as { code?: string }).code === 'MCP_GW_UPSTREAM_REFUSED' ? (err as { reply: RefusedReply }).reply : undefined
}

/** An HTTP answer to a POST, as messages; failures come out as coded errors. */
export async function answerFromHttp (name: string, res: UpstreamHttpResponse, req: UpstreamSend): Promise<UpstreamAnswer> {
  const hadSession = req.headers[HEADER.sessionId] !== undefined
  if (res.status >= 300) {
    const failure = await httpFailure(name, res, hadSession)
    const named = res.headers[HEADER.sessionId]
    // A session named in a failed answer is one the upstream holds for nobody: whoever opened it ends it.
    if (req.opensSession === true && typeof named === 'string' && SESSION_ID.test(named)) Object.assign(failure, { upstreamSessionId: named })
    throw failure
  }
  let sessionId: string | undefined
  if (req.opensSession === true) {
    const id = res.headers[HEADER.sessionId]
    if (id !== undefined && (typeof id !== 'string' || !SESSION_ID.test(id))) {
      drain(res.body)
      throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, 'its Mcp-Session-Id is not visible ASCII')
    }
    sessionId = id
  }
  const type = mediaType(res.headers)
  if (type === 'text/event-stream') return { kind: 'stream', sessionId, events: sseEvents(res.body) }
  if (type === 'application/json') {
    let raw: Buffer
    try {
      raw = await readBounded(res.body, req.maxBytes)
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, err.message, { cause: err })
      throw req.signal?.aborted === true ? err : new GatewayErrors.UPSTREAM_UNAVAILABLE(name, { cause: err })
    }
    let parsed: ReturnType<typeof toMessages>
    try {
      parsed = toMessages(JSON.parse(raw.toString('utf8')))
    } catch (err) {
      parsed = { ok: false, code: 0, message: (err as Error).message }
    }
    if (!parsed.ok) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, parsed.message)
    return { kind: 'single', sessionId, messages: parsed.messages, batch: parsed.batch, raw }
  }
  drain(res.body)
  if (req.messages.some(isRequest)) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, `unexpected content type "${type}" for a request`)
  return { kind: 'accepted', sessionId }
}

/** A Streamable HTTP server, as the three functions below use it. */
export interface HttpPeer {
  readonly name: string
  request (req: UpstreamHttpRequest): Promise<UpstreamHttpResponse>
}

/** `send` for an upstream that speaks Streamable HTTP: one POST, its answer read as messages. */
export async function sendOverHttp (upstream: HttpPeer, req: UpstreamSend): Promise<UpstreamAnswer> {
  const res = await upstream.request({ method: 'POST', headers: req.headers, body: req.body, signal: req.signal, caller: req.caller })
  return await answerFromHttp(upstream.name, res, req)
}

/** `listen` over Streamable HTTP: a GET, which may stay idle for hours (no body timeout). */
export async function listenOverHttp (upstream: HttpPeer, req: UpstreamSessionRequest): Promise<UpstreamEvents> {
  const res = await upstream.request({ method: 'GET', headers: req.headers, signal: req.signal, longLived: true, caller: req.caller })
  if (res.status >= 300) throw await httpFailure(upstream.name, res, req.headers[HEADER.sessionId] !== undefined)
  if (mediaType(res.headers) !== 'text/event-stream') {
    drain(res.body)
    throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(upstream.name, 'GET stream is not text/event-stream')
  }
  return sseEvents(res.body)
}

/** `end` over Streamable HTTP: a DELETE. */
export async function endOverHttp (upstream: HttpPeer, req: UpstreamSessionRequest): Promise<void> {
  const res = await upstream.request({ method: 'DELETE', headers: req.headers, signal: req.signal, caller: req.caller })
  if (res.status >= 300) throw await httpFailure(upstream.name, res, req.headers[HEADER.sessionId] !== undefined)
  drain(res.body)
}
