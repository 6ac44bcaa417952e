/**
 * The MCP endpoint for one upstream: POST / GET / DELETE on one path, in its own encapsulated
 * context (its own body parser, error handler and Origin check), so the host app's routes keep
 * their own behaviour.
 */
import { Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyContextConfig, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { InterceptorChain, type Interceptor } from '../lib/interceptors/chain.ts'
import { resultLimitInterceptor } from '../lib/interceptors/result-limit.ts'
import { Abort } from '../lib/abort.ts'
import type { ExchangeObserver } from '../lib/observer.ts'
import { Heartbeat } from '../lib/heartbeat.ts'
import { GatewayErrors, toJsonRpcError } from '../lib/errors.ts'
import { Forwarder, type ClientAnswer, type ExchangeContext } from '../lib/forwarder.ts'
import { bodyMethod, reencoded, resolveSession, type ParsedBody, type SessionResolution } from '../lib/session/resolve.ts'
import { MAX_DEPTH, MAX_TOOL_NAME_LENGTH, PARSE_ERROR, POISONING_DEFAULTS, hasOversizedToolName, nestsDeeperThan, parseMessages, type JsonRpcId, type JsonRpcMessage, type PoisoningPolicy } from '../lib/jsonrpc.ts'
import { invalid } from '../lib/options.ts'
import { originChecker } from '../lib/origin.ts'
import { createUpstream } from '../lib/upstream/create.ts'
import { checkProxyOptions, type McpProxyOptions } from './proxy-options.ts'

export { PROXY_DEFAULTS, type McpProxyOptions } from './proxy-options.ts'

/** One MCP endpoint, for plugins that offer it over another transport (WebSocket). */
export interface McpEndpoint {
  upstream: string
  path: string
  forwarder: Forwarder
  originAllowed: (origin: string) => boolean
  /** The interceptors an exchange of this endpoint runs (gateway-wide, then the route's). */
  interceptors: () => InterceptorChain | undefined
  routeConfig: NonNullable<FastifyContextConfig['mcp']>
  bodyLimit: number
  maxInFlightPerSession: number
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on MCP endpoint routes: which upstream the route serves. */
    mcp?: {
      upstream: string
      /** This route's interceptors, run after the gateway-wide ones. */
      interceptors?: Interceptor[]
    }
  }
}

// Fatal decoding: invalid UTF-8 is a parse error, not silently replaced text forwarded upstream.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The endpoint's JSON body parser. `poisoning` is the host's `onProtoPoisoning` /
 * `onConstructorPoisoning`, so prototype keys meet the same rule here as on the host's own routes.
 */
function parseBody (poisoning: PoisoningPolicy) {
  return function parse (request: FastifyRequest, raw: Buffer, done: (err: Error | null, body?: ParsedBody) => void): void {
    if (raw.length === 0) {
      // No body is no body, whatever the Content-Type says: some clients (the Python SDK) send
      // `content-type: application/json` on every request, DELETE included. Only a POST needs one.
      if (request.method === 'POST') done(new GatewayErrors.PARSE_ERROR('Parse error: the POST body is empty'))
      else done(null, undefined)
      return
    }
    let text: string
    try {
      text = utf8.decode(raw)
    } catch {
      done(new GatewayErrors.PARSE_ERROR('Parse error: body is not valid UTF-8'))
      return
    }
    if (nestsDeeperThan(text, MAX_DEPTH)) {
      done(new GatewayErrors.INVALID_REQUEST(`Invalid Request: JSON nested deeper than ${MAX_DEPTH} levels`))
      return
    }
    const parsed = parseMessages(text, poisoning)
    if (!parsed.ok) {
      done(parsed.code === PARSE_ERROR ? new GatewayErrors.PARSE_ERROR(parsed.message) : new GatewayErrors.INVALID_REQUEST(parsed.message))
      return
    }
    // Before any interceptor, rule or authorization matches globs on the name.
    if (hasOversizedToolName(parsed.messages)) {
      done(new GatewayErrors.TOOL_NAME_TOO_LONG(MAX_TOOL_NAME_LENGTH))
      return
    }
    // Keys the policy removed must not reach the upstream in the original text either.
    const forwarded = parsed.removed === true ? Buffer.from(JSON.stringify(parsed.batch ? parsed.messages : parsed.messages[0])) : raw
    done(null, { raw: forwarded, messages: parsed.messages, batch: parsed.batch })
  }
}

/** The id to put on an error answering a single request, so the client can match it. */
function soleRequestId (request: FastifyRequest): JsonRpcId | null {
  const messages = request.mcpMessages
  if (messages === null || messages.length !== 1) return null
  const message = messages[0] as JsonRpcMessage
  return 'method' in message && 'id' in message ? message.id : null
}

/** Seconds a client is told to wait when the gateway is full or draining. */
const RETRY_AFTER_SECONDS = '5'

function errorHandler (upstream: string, observers: ExchangeObserver[], bodyLimit: number) {
  return function handle (thrown: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    // Fastify's own "too large" names no limit: the client is told which one, and how big it is.
    const err = thrown.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? Object.assign(new GatewayErrors.BODY_TOO_LARGE(bodyLimit), { data: { limit: 'bodyLimit', bytes: bodyLimit } }) : thrown
    const { status, body } = toJsonRpcError(err, soleRequestId(request))
    if (status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS)
    if (status >= 500 && !String(err.code).startsWith('MCP_GW_')) {
      request.log.error({ err }, 'MCP exchange failed')
    } else if (status >= 500) {
      request.log.warn({ code: err.code, status, cause: (err.cause as Error | undefined)?.message }, 'MCP exchange failed upstream')
    } else {
      request.log.info({ code: err.code, status }, 'MCP request refused')
    }
    for (const observer of observers) observer.refused?.(upstream, err.code ?? String(status), status)
    if (err.code === 'MCP_GW_BODY_TOO_LARGE') for (const observer of observers) observer.limited?.(upstream, 'body', 'refused')
    void reply.code(status).type('application/json').send(body)
  }
}

/** Levels at which the gateway's error and warning lines are written (a child logger pays off). */
const LOGGING_LEVELS = new Set(['error', 'warn', 'info', 'debug', 'trace'])

/**
 * The adapter's half of an exchange: its answer on this reply. A logged stream takes the response
 * over (hijacked, so Fastify writes nothing more); everything else goes out through `reply.send`,
 * through the route's onSend hooks.
 */
async function deliver (reply: FastifyReply, answer: ClientAnswer, streams: Set<Readable>): Promise<FastifyReply> {
  const raw = reply.raw
  if (answer.kind === 'logged') {
    // What the host's hooks set on the reply so far (CORS, rate-limit, tracing headers) goes out
    // on the stream too: a hijacked reply would otherwise drop it.
    const kept = reply.getHeaders() as Record<string, string | number | string[]>
    try {
      // Headers leave with the first write (`retry:` and priming follow at once).
      raw.writeHead(200, Object.assign({}, kept, answer.headers))
    } catch (err) {
      // A header a host hook set that Node refuses: the client gets the error, the stream goes.
      answer.release()
      throw err
    }
    reply.hijack()
    try {
      await answer.attach(raw)
    } catch (err) {
      // Past the hijack Fastify cannot answer: the response is cut, the client resumes or retries.
      reply.log.error({ err }, 'attaching the client to its stream failed')
      raw.destroy()
    }
    return reply
  }
  if (answer.kind === 'framed') throw new TypeError('an HTTP exchange was answered as WebSocket frames')
  if (answer.kind === 'refused') return reply.code(answer.reply.status).headers(answer.reply.headers).send(answer.reply.body)
  if (answer.kind === 'messages') {
    const { messages, headers } = answer
    // Nothing to say: a POST was accepted, a DELETE done.
    if (messages.length === 0) return reply.code(reply.request.method === 'DELETE' ? 200 : 202).headers(headers).send()
    const body = answer.raw ?? Buffer.from(JSON.stringify(answer.batch || messages.length !== 1 ? messages : messages[0]))
    return reply.code(200).headers(headers).header('content-type', 'application/json').send(body)
  }
  const body = answer.body
  streams.add(body)
  body.once('close', () => streams.delete(body))
  // The server's stream may be quiet for hours: its client learns it is open as soon as it flows.
  // (HTTP/2 responses have no flushHeaders: their headers leave with the first event.)
  if (answer.live) body.once('resume', () => { if (!raw.headersSent && typeof raw.flushHeaders === 'function') raw.flushHeaders() })
  return reply.code(200).headers(answer.headers).send(body)
}

const kResolution = Symbol('mcpResolution')
type ResolvedRequest = FastifyRequest & { [kResolution]?: SessionResolution }

async function mcpProxy (fastify: FastifyInstance, options: McpProxyOptions): Promise<void> {
  const checked = checkProxyOptions(options)
  // Virtual sessions are served by any instance when their member sessions are in a shared store.
  const shared = fastify.hasDecorator('mcpStores') ? fastify.mcpStores.shared : undefined
  const upstream = createUpstream(checked.upstream, fastify.log, shared, {
    inbound: fastify.hasDecorator('mcpAuth') ? fastify.mcpAuth.methods : [],
    identity: fastify.hasDecorator('mcpIdentity') ? fastify.mcpIdentity : undefined
  })
  // Resumable streams when the streaming plugin is registered; plain relaying otherwise.
  const streaming = fastify.hasDecorator('mcpStreams') ? fastify.mcpStreams : undefined
  const forwarder = new Forwarder({
    upstream,
    sessions: fastify.mcpSessions,
    maxResponseBytes: checked.maxResponseBytes,
    streams: streaming,
    observers: fastify.mcpObservers,
    timeouts: checked.timeouts,
    audit: fastify.hasDecorator('mcpAudit') ? fastify.mcpAudit : undefined,
    consentPrompts: 'auth' in checked.upstream && checked.upstream.auth?.mode === 'oauth'
  })
  const originAllowed = originChecker(checked.allowedOrigins)
  const upstreamName = checked.upstream.name

  if (fastify.mcpUpstreams.has(upstreamName)) throw invalid('upstream.name', `"${upstreamName}" is already registered`)
  fastify.mcpUpstreams.set(upstreamName, upstream)
  // However a session ends (DELETE, expiry, upstream gone), free its streams and log here.
  fastify.mcpSessions.onEnd(async (record, reason) => {
    try {
      await forwarder.released(record, reason, fastify.log)
    } catch (err) {
      fastify.log.error({ err, sessionId: record.id }, 'freeing an ended session failed')
    }
  })

  // Open SSE responses, ended at close (the `end` phase): an open stream would keep close() waiting.
  const streams = new Set<Readable>()
  /** POSTs in flight per session. */
  const inFlight = new Map<string, number>()

  await fastify.register(async function mcpEndpoint (scope) {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: checked.bodyLimit }, parseBody({
      protoAction: fastify.initialConfig.onProtoPoisoning ?? POISONING_DEFAULTS.protoAction,
      constructorAction: fastify.initialConfig.onConstructorPoisoning ?? POISONING_DEFAULTS.constructorAction
    }))
    scope.setErrorHandler(errorHandler(upstreamName, fastify.mcpObservers, checked.bodyLimit))

    scope.addHook('onRequest', async (request) => {
      const origin = request.headers.origin
      if (origin !== undefined && !originAllowed(origin)) throw new GatewayErrors.FORBIDDEN_ORIGIN(origin)
    })

    // Session resolution runs before any route-level hook, so those see `request.mcpSession`.
    scope.addHook('preHandler', async (request: ResolvedRequest, reply) => {
      if (request.routeOptions.config.mcp === undefined) return
      const body = request.body as ParsedBody | undefined
      // A POST with no body at all never met the JSON parser: it is not an MCP message.
      if (request.method === 'POST' && body === undefined) throw new GatewayErrors.UNSUPPORTED_MEDIA_TYPE()
      if (body !== undefined) request.mcpMessages = body.messages
      try {
        request[kResolution] = await resolveSession(fastify.mcpSessions, request.headers, body, {
          upstream: upstreamName,
          principal: request.mcpPrincipal?.id,
          onSession: (session) => { request.mcpSession = session }
        })
      } finally {
        // Every later line about this exchange, Fastify's own included, carries its session and
        // JSON-RPC method (never a body). Skipped when nothing would be logged anyway.
        if (LOGGING_LEVELS.has(request.log.level)) {
          request.log = request.log.child({ sessionId: request.mcpSession?.id, method: body === undefined ? undefined : bodyMethod(body) })
          reply.log = request.log
        }
      }
    })

    // The gateway-wide chain then the route's own, composed again only when either changes.
    let composed: { chain: InterceptorChain, version: number, route: Interceptor[] } | undefined
    const interceptorsFor = (route: Interceptor[] | undefined): InterceptorChain | undefined => {
      const global = fastify.hasDecorator('mcpInterceptors') ? fastify.mcpInterceptors : undefined
      if (route === undefined || route.length === 0) return global
      const version = global?.version ?? 0
      if (composed === undefined || composed.version !== version || composed.route !== route) {
        composed = { chain: global === undefined ? new InterceptorChain({}, route) : global.with(route), version, route }
      }
      return composed.chain
    }

    // The result limits run last: they see what the client would be sent.
    const limits = checked.resultLimits === undefined
      ? []
      : [resultLimitInterceptor(checked.resultLimits, (action) => { for (const observer of fastify.mcpObservers) observer.limited?.(upstreamName, 'result', action) })]
    const routeConfig = { upstream: upstreamName, interceptors: [...checked.route.interceptors ?? [], ...limits] }
    fastify.mcpEndpoints.set(upstreamName, {
      upstream: upstreamName,
      path: checked.path,
      forwarder,
      originAllowed,
      interceptors: () => interceptorsFor(routeConfig.interceptors),
      routeConfig,
      bodyLimit: checked.bodyLimit,
      maxInFlightPerSession: checked.maxInFlightPerSession
    })

    scope.route({
      method: ['POST', 'GET', 'DELETE'],
      url: checked.path,
      config: { mcp: routeConfig },
      ...(checked.route.preHandler === undefined ? {} : { preHandler: checked.route.preHandler }),
      ...(checked.route.onSend === undefined ? {} : { onSend: checked.route.onSend }),
      handler: async (request: ResolvedRequest, reply) => {
        const abort = new Abort()
        const raw = reply.raw
        let takenOver = false
        // Before the log owns the response, a client that leaves aborts the upstream request.
        raw.once('close', () => { if (!raw.writableFinished && !takenOver) abort.abort() })
        const resolution = request[kResolution] as SessionResolution
        if (resolution.kind === 'session' && request.method === 'POST') {
          const id = resolution.session.id
          const count = inFlight.get(id) ?? 0
          if (count >= checked.maxInFlightPerSession) {
            reply.header('retry-after', '1')
            throw new GatewayErrors.TOO_MANY_IN_FLIGHT(checked.maxInFlightPerSession)
          }
          inFlight.set(id, count + 1)
          raw.once('close', () => {
            const left = (inFlight.get(id) ?? 1) - 1
            if (left === 0) inFlight.delete(id)
            else inFlight.set(id, left)
          })
        }
        const config = request.routeOptions.config.mcp as NonNullable<FastifyContextConfig['mcp']>
        const ctx: ExchangeContext = {
          headers: request.headers,
          resolution,
          signal: abort,
          log: request.log,
          interceptors: interceptorsFor(config.interceptors),
          principal: request.mcpPrincipal ?? undefined,
          routeConfig: config as unknown as Record<string, unknown>
        }
        let parsed = request.body as ParsedBody
        const messages = request.mcpMessages
        if (request.method === 'POST' && messages !== null && messages !== parsed.messages) {
          // A route hook replaced the messages: what is sent is what it left.
          if (messages.length === 0) return reply.code(202).send()
          parsed = reencoded(messages, parsed.batch)
        }
        const out = request.method === 'POST'
          ? await forwarder.post(ctx, parsed)
          : request.method === 'GET' ? await forwarder.get(ctx) : await forwarder.delete(ctx)
        if (out.kind === 'logged') takenOver = true
        return await deliver(reply, out, streams)
      }
    })

    scope.route({
      method: ['PUT', 'PATCH'],
      url: checked.path,
      // Refused before the body is parsed: whatever it holds, the method is wrong.
      onRequest: async (_request, reply) => {
        reply.header('allow', 'GET, POST, DELETE')
        throw new GatewayErrors.METHOD_NOT_ALLOWED()
      },
      handler: async () => undefined
    })
  })

  fastify.mcpShutdown.add('end', `unlogged streams of ${upstreamName}`, async () => {
    for (const stream of streams) stream.destroy()
  })
  const heartbeat = new Heartbeat(fastify.mcpSessions, upstream, checked.heartbeat, fastify.log)
  fastify.addHook('onReady', async () => {
    heartbeat.start()
    // Started once the server is ready, not at register: a failed start-up leaves no children.
    upstream.warm?.()
  })
  fastify.addHook('onClose', async () => {
    await heartbeat.stop()
    await upstream.close()
  })
}

export default fp(mcpProxy, {
  name: 'mcp-gateway-proxy',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions']
})
