/**
 * A 2025-era session over a 2026-07-28 upstream: the channel the era bridge gives each session of
 * a 2025 client, so the client keeps what the new revision dropped.
 *
 * - `initialize` is answered here, from the upstream's `server/discover`; `notifications/initialized`,
 *   `ping` and `logging/setLevel` stay here too (the level travels in each request's `_meta`).
 * - Every other request goes upstream as a stateless 2026 request: the `_meta` envelope
 *   (protocol version, the client's capabilities and info) and the `Mcp-Method` / `Mcp-Name`
 *   headers are added.
 * - An `input_required` result becomes server-to-client requests (elicitation, sampling, roots)
 *   sent to the client on the call's stream; once the client has answered them all, the original
 *   request is retried upstream with the answers, and its final result answers the client.
 * - `notifications/cancelled` closes the request's upstream stream (cancellation in 2026).
 * - After `initialized`, a `subscriptions/listen` stream carries list changes and resource
 *   updates (for the URIs the client subscribed to) to the client's stream.
 *
 * The channel upstream above it makes the session ids, SSE answers and GET stream; the gateway's
 * event log makes them resumable.
 */
import type { Caller } from '../upstream-auth/credentials.ts'
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { errorResponse, isRequest, isResponse, toMessages, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER, META_PROTOCOL_VERSION, STATELESS_VERSION } from '../protocol.ts'
import { drain, readBounded } from '../relay/body.ts'
import { SseParser } from '../sse/parser.ts'
import type { MessageChannel } from './channel.ts'
import type { StreamableHttpUpstream } from './streamable-http.ts'

/** Errors of the upstream's `auth` (lib/upstream-auth), answered as coded rather than as "unavailable". */
const IDENTITY_ERRORS = new Set(['MCP_GW_CONSENT_REQUIRED', 'MCP_GW_UPSTREAM_TOKEN'])

export const META = {
  protocolVersion: META_PROTOCOL_VERSION,
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  logLevel: 'io.modelcontextprotocol/logLevel',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
  serverInfo: 'io.modelcontextprotocol/serverInfo'
} as const

/** What `server/discover` answers (the fields the bridge uses). */
export interface DiscoverResult {
  supportedVersions?: string[]
  capabilities?: Record<string, unknown>
  serverInfo?: Record<string, unknown>
  instructions?: string
  _meta?: Record<string, unknown>
}

const LEGACY_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']
const NAMED: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' }
const MAX_ROUNDS = 8
const MAX_ANSWER_BYTES = 64 * 1024 * 1024

/** A header value as the 2026 transport wants it: plain when safe, else the Base64 sentinel form. */
export function encodeHeaderValue (value: string): string {
  const safe = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !(value.startsWith('=?base64?') && value.endsWith('?='))
  return safe ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`
}

/** The headers and body of one 2026-07-28 request. */
export function modernRequest (message: JsonRpcRequest, meta: Record<string, unknown>, extra: Record<string, unknown> = {}): { headers: Record<string, string>, body: string } {
  const params: Record<string, unknown> = { ...message.params, ...extra, _meta: { ...(message.params?._meta as Record<string, unknown> | undefined), ...meta } }
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    [HEADER.protocolVersion]: STATELESS_VERSION,
    [HEADER.method]: message.method
  }
  const field = NAMED[message.method]
  const name = field === undefined ? undefined : params[field]
  if (typeof name === 'string') headers[HEADER.name] = encodeHeaderValue(name)
  return { headers, body: JSON.stringify({ jsonrpc: '2.0', id: message.id, method: message.method, params }) }
}

/** Reads an upstream answer (JSON or SSE) message by message. */
export async function readAnswer (res: { status: number, headers: Record<string, unknown>, body: NodeJS.ReadableStream & { destroy: () => void } }, onMessage: (message: JsonRpcMessage) => void): Promise<void> {
  const type = String(res.headers['content-type'] ?? '')
  if (type.startsWith('text/event-stream')) {
    const parser = new SseParser({
      onEvent: (event) => {
        if (event.data.length === 0) return
        try {
          const parsed = toMessages(JSON.parse(event.data))
          if (parsed.ok) for (const message of parsed.messages) onMessage(message)
        } catch {}
      }
    })
    for await (const chunk of res.body) parser.push(chunk as Buffer)
    return
  }
  if (type.startsWith('application/json')) {
    const raw = await readBounded(res.body as never, MAX_ANSWER_BYTES)
    const parsed = toMessages(JSON.parse(raw.toString('utf8')))
    if (parsed.ok) for (const message of parsed.messages) onMessage(message)
    return
  }
  drain(res.body as never)
}

interface Exchange {
  request: JsonRpcRequest
  abort: AbortController
  /** Outstanding input requests of the current round: the id sent to the client, to its key. */
  waiting: Map<string, string>
  responses: Record<string, unknown>
  requestState: unknown
  rounds: number
}

export class ModernUpstreamForLegacyClient implements MessageChannel {
  onmessage: (message: JsonRpcMessage) => void = () => {}
  onclose: (reason: Error) => void = () => {}
  private readonly upstream: StreamableHttpUpstream
  /** The upstream's `server/discover`, asked for whom (per-user upstream `auth`). */
  private readonly discover: (caller: Caller | undefined) => Promise<DiscoverResult>
  private readonly log: Logger
  private clientInfo: unknown = { name: 'fastify-mcp-gateway', version: '0' }
  private clientCapabilities: unknown = {}
  private logLevel: string | undefined
  private readonly exchanges = new Map<JsonRpcId, Exchange>()
  /** Input requests sent to the client: their id, to the exchange waiting for the answer. */
  private readonly asked = new Map<string, Exchange>()
  private readonly subscriptions = new Set<string>()
  private listening: AbortController | undefined
  private nextId = 1
  private closed = false

  constructor (upstream: StreamableHttpUpstream, discover: (caller: Caller | undefined) => Promise<DiscoverResult>, log: Logger) {
    this.upstream = upstream
    this.discover = discover
    this.log = log
  }

  /** Whom the session's requests are for (auth on): the principal of its latest message. */
  private caller: Caller | undefined

  send (message: JsonRpcMessage, caller?: Caller): void {
    if (this.closed) throw new GatewayErrors.UPSTREAM_EXITED(this.upstream.name, 'the session ended')
    if (caller !== undefined) this.caller = caller
    if (isResponse(message)) {
      this.answered(message)
      return
    }
    if (!isRequest(message)) {
      if (message.method === 'notifications/initialized') this.listen()
      if (message.method === 'notifications/cancelled') {
        const id = message.params?.requestId
        if (typeof id === 'string' || typeof id === 'number') this.exchanges.get(id)?.abort.abort()
      }
      // 2026-07-28 has no other client notifications over HTTP: nothing to forward.
      return
    }
    switch (message.method) {
      case 'initialize':
        void this.initialize(message)
        return
      case 'ping':
        this.reply(message.id, {})
        return
      case 'logging/setLevel':
        this.logLevel = typeof message.params?.level === 'string' ? message.params.level : undefined
        this.reply(message.id, {})
        return
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = message.params?.uri
        if (typeof uri === 'string') {
          if (message.method === 'resources/subscribe') this.subscriptions.add(uri)
          else this.subscriptions.delete(uri)
          if (this.listening !== undefined) this.listen()
        }
        this.reply(message.id, {})
        return
      }
      default:
        this.start(message)
    }
  }

  private reply (id: JsonRpcId, result: Record<string, unknown>): void {
    this.onmessage({ jsonrpc: '2.0', id, result })
  }

  private fail (id: JsonRpcId, err: Error): void {
    // With the error's data: a consent prompt's URL (per-user upstream auth) is the client's to act on.
    this.onmessage(toJsonRpcError(err as Error & { code?: string }, id).body)
  }

  private async initialize (message: JsonRpcRequest): Promise<void> {
    const params = message.params ?? {}
    this.clientInfo = params.clientInfo ?? this.clientInfo
    this.clientCapabilities = params.capabilities ?? {}
    const requested = typeof params.protocolVersion === 'string' ? params.protocolVersion : '2025-03-26'
    try {
      const found = await this.discover(this.caller)
      this.reply(message.id, {
        protocolVersion: LEGACY_VERSIONS.includes(requested) ? requested : '2025-11-25',
        capabilities: withoutListenOnly(found.capabilities ?? {}),
        serverInfo: found.serverInfo ?? (found._meta?.[META.serverInfo] as Record<string, unknown> | undefined) ?? { name: this.upstream.name, version: '0' },
        ...(found.instructions === undefined ? {} : { instructions: found.instructions })
      })
    } catch (err) {
      this.fail(message.id, err as Error)
    }
  }

  private meta (): Record<string, unknown> {
    const meta: Record<string, unknown> = {
      [META.protocolVersion]: STATELESS_VERSION,
      [META.clientCapabilities]: this.clientCapabilities,
      [META.clientInfo]: this.clientInfo
    }
    if (this.logLevel !== undefined) meta[META.logLevel] = this.logLevel
    return meta
  }

  private start (request: JsonRpcRequest): void {
    const exchange: Exchange = { request, abort: new AbortController(), waiting: new Map(), responses: {}, requestState: undefined, rounds: 0 }
    this.exchanges.set(request.id, exchange)
    void this.round(exchange, {})
  }

  /** One upstream round of a request: the original, or a retry carrying the client's answers. */
  private async round (exchange: Exchange, extra: Record<string, unknown>): Promise<void> {
    const { request } = exchange
    const { headers, body } = modernRequest(request, this.meta(), extra)
    let final: JsonRpcMessage | undefined
    try {
      const res = await this.upstream.request({ method: 'POST', headers, body, signal: exchange.abort.signal, caller: this.caller })
      await readAnswer(res as never, (message) => {
        if (isResponse(message)) {
          if (message.id === request.id) final = message
          return
        }
        // Request-scoped notifications (progress, log messages) go to the client as they come.
        if (!isRequest(message)) this.onmessage(message)
      })
    } catch (err) {
      if (exchange.abort.signal.aborted) {
        this.exchanges.delete(request.id)
        return
      }
      // The upstream's auth failing for this user is theirs to act on (a consent prompt keeps its URL).
      final = IDENTITY_ERRORS.has((err as { code?: string }).code ?? '')
        ? toJsonRpcError(err as Error & { code?: string }, request.id).body
        : errorResponse(request.id, -32060, (err as Error).message)
    }
    if (final === undefined) final = errorResponse(request.id, -32065, `Upstream ${this.upstream.name} ended the stream before answering this request`)
    const result = 'result' in final ? final.result : undefined
    if (result !== undefined && result.resultType === 'input_required') {
      this.askClient(exchange, result)
      return
    }
    this.exchanges.delete(request.id)
    if (result !== undefined && result.resultType === 'complete') {
      const { resultType: _complete, ...rest } = result
      final = { ...final, result: rest } as JsonRpcMessage
    }
    this.onmessage(final)
  }

  /** An `input_required` result: its input requests go to the client as server-to-client requests. */
  private askClient (exchange: Exchange, result: Record<string, unknown>): void {
    exchange.rounds++
    const inputs = (result.inputRequests ?? {}) as Record<string, { method?: unknown, params?: unknown }>
    exchange.requestState = result.requestState
    exchange.responses = {}
    exchange.waiting.clear()
    const keys = Object.keys(inputs)
    if (exchange.rounds > MAX_ROUNDS || (keys.length === 0 && result.requestState === undefined)) {
      this.exchanges.delete(exchange.request.id)
      this.fail(exchange.request.id, new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.upstream.name, 'input_required without end'))
      return
    }
    if (keys.length === 0) {
      void this.round(exchange, { requestState: result.requestState })
      return
    }
    for (const key of keys) {
      const input = inputs[key] as { method?: unknown, params?: unknown }
      const id = `gw-input-${this.nextId++}`
      exchange.waiting.set(id, key)
      this.asked.set(id, exchange)
      this.onmessage({ jsonrpc: '2.0', id, method: String(input.method), params: input.params as Record<string, unknown> | undefined })
    }
  }

  /** The client answered one of the input requests; once all are in, the request is retried. */
  private answered (message: JsonRpcMessage): void {
    const id = (message as { id: unknown }).id
    if (typeof id !== 'string') return
    const exchange = this.asked.get(id)
    if (exchange === undefined) return
    this.asked.delete(id)
    const key = exchange.waiting.get(id) as string
    exchange.waiting.delete(id)
    exchange.responses[key] = 'result' in message ? message.result : { error: (message as { error: unknown }).error }
    if (exchange.waiting.size > 0) return
    const extra: Record<string, unknown> = { inputResponses: exchange.responses }
    if (exchange.requestState !== undefined) extra.requestState = exchange.requestState
    void this.round(exchange, extra)
  }

  /** (Re)opens the `subscriptions/listen` stream with what the client may want to hear. */
  private listen (): void {
    this.listening?.abort()
    const abort = new AbortController()
    this.listening = abort
    void (async () => {
      let failures = 0
      while (!abort.signal.aborted && !this.closed) {
        try {
          const found = await this.discover(this.caller)
          const filter = listenFilter(found.capabilities ?? {}, [...this.subscriptions])
          if (Object.keys(filter).length === 0) return
          const message: JsonRpcRequest = { jsonrpc: '2.0', id: `gw-listen-${this.nextId++}`, method: 'subscriptions/listen', params: { notifications: filter } }
          const { headers, body } = modernRequest(message, this.meta())
          const res = await this.upstream.request({ method: 'POST', headers, body, signal: abort.signal, longLived: true, caller: this.caller })
          failures = 0
          await readAnswer(res as never, (notification) => {
            if (isResponse(notification) || isRequest(notification) || notification.method === 'notifications/subscriptions/acknowledged') return
            const meta = notification.params?._meta as Record<string, unknown> | undefined
            if (meta !== undefined && META.subscriptionId in meta) {
              const { [META.subscriptionId]: _id, ...rest } = meta
              const params = { ...notification.params }
              if (Object.keys(rest).length === 0) delete params._meta
              else params._meta = rest
              this.onmessage({ ...notification, params })
            } else {
              this.onmessage(notification)
            }
          })
        } catch (err) {
          if (abort.signal.aborted) return
          this.log.debug({ upstream: this.upstream.name, err }, 'subscriptions/listen stream lost')
        }
        failures++
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5000)).unref())
      }
    })()
  }

  async close (): Promise<void> {
    this.kill()
  }

  kill (): void {
    if (this.closed) return
    this.closed = true
    this.listening?.abort()
    for (const exchange of this.exchanges.values()) exchange.abort.abort()
    this.exchanges.clear()
    this.asked.clear()
    this.onclose(new GatewayErrors.UPSTREAM_EXITED(this.upstream.name, 'the session ended'))
  }
}

/** A 2025 client learns of changes unsolicited: listen for whatever the server can announce. */
function listenFilter (capabilities: Record<string, unknown>, uris: string[]): Record<string, unknown> {
  const filter: Record<string, unknown> = {}
  const listChanged = (name: string): boolean => (capabilities[name] as { listChanged?: boolean } | undefined)?.listChanged === true
  if (listChanged('tools')) filter.toolsListChanged = true
  if (listChanged('prompts')) filter.promptsListChanged = true
  if (listChanged('resources')) filter.resourcesListChanged = true
  if (uris.length > 0) filter.resourceSubscriptions = uris
  return filter
}

/** Capabilities as a 2025 client reads them: `subscribe` stays (the bridge maps it to listen). */
function withoutListenOnly (capabilities: Record<string, unknown>): Record<string, unknown> {
  const { extensions: _extensions, ...rest } = capabilities
  return rest
}
