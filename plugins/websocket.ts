/**
 * The WebSocket transport for clients (the MCP WebSocket proposal, SEP-1288), on
 * `@fastify/websocket`: `<endpoint path>/ws` for every MCP endpoint (`/mcp/ws` by default), the
 * `mcp` subprotocol, one JSON-RPC message per text frame, one gateway session per connection.
 * Whatever the upstream speaks; auth, Origin, interceptors, sessions and metrics as for HTTP.
 */
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { markUpgraded } from '../lib/connections.ts'
import { GatewayErrors } from '../lib/errors.ts'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger, optionalString } from '../lib/options.ts'
import { WS_CLOSE, WsConnection } from '../lib/ws/connection.ts'
import { drainFor } from './streaming.ts'

export interface McpWebSocketOptions {
  /**
   * Path of each endpoint's WebSocket, appended to the endpoint's own path.
   * @default '/ws'
   */
  suffix?: string
  /** Interval of WebSocket pings; a peer that has not answered the last one is dropped. 0: off. @default 30000 ms */
  pingIntervalMs?: number
  /** Bytes waiting to be sent past which a slow reader is closed with 4001. @default 8 MiB */
  highWaterMark?: number
  /**
   * At shutdown, longest wait for in-flight calls before closing with 1001. Like the streaming
   * plugin's drain it must fit in the host's `pluginTimeout` with `DRAIN_MARGIN_MS` to spare.
   * @default 10000 ms, or less to fit (8000 with Fastify's default pluginTimeout of 10 s)
   */
  drainTimeoutMs?: number
}

/** The drain's default comes from `drainFor` (it depends on the host's pluginTimeout). */
export const WEBSOCKET_DEFAULTS = { suffix: '/ws', pingIntervalMs: 30_000, highWaterMark: 8 * 1024 * 1024 } as const

const SUBPROTOCOL = 'mcp'

async function mcpWebSocket (fastify: FastifyInstance, options: McpWebSocketOptions): Promise<void> {
  if (!isPlainObject(options as unknown)) throw invalid('websocket', 'must be an object')
  knownKeys('websocket', options as unknown as Record<string, unknown>, [...REGISTER_OPTION_KEYS, 'suffix', 'pingIntervalMs', 'highWaterMark', 'drainTimeoutMs'])
  const suffix = optionalString('websocket.suffix', options.suffix, WEBSOCKET_DEFAULTS.suffix)
  if (!suffix.startsWith('/')) throw invalid('websocket.suffix', 'must start with "/"')
  const pingIntervalMs = optionalInteger('websocket.pingIntervalMs', options.pingIntervalMs, 0, WEBSOCKET_DEFAULTS.pingIntervalMs)
  const highWaterMark = optionalInteger('websocket.highWaterMark', options.highWaterMark, 1024, WEBSOCKET_DEFAULTS.highWaterMark)
  // Its drain runs in the core plugin's preClose hook, which Fastify cuts at pluginTimeout: fit it.
  const drainTimeoutMs = drainFor('websocket.drainTimeoutMs', options.drainTimeoutMs, fastify.initialConfig.pluginTimeout ?? 10_000)
  const endpoints = [...fastify.mcpEndpoints.values()]
  if (endpoints.length === 0) throw invalid('websocket', 'needs an MCP endpoint (the proxy plugin) registered first')

  const connections = new Map<WebSocket, WsConnection>()
  const bySession = new Map<string, WsConnection>()
  fastify.mcpSessions.onEnd(async (record, reason) => {
    bySession.get(record.id)?.sessionEnded(reason)
  }, { first: true })

  // Run by the core plugin's preClose hook, before @fastify/websocket's own: in-flight calls are
  // answered, then 1001.
  fastify.mcpShutdown.add('drain', 'WebSocket calls', async () => {
    await Promise.all([...connections.values()].map(async (connection) => await connection.drain(drainTimeoutMs)))
  })

  await fastify.register(websocket, {
    options: {
      maxPayload: Math.max(...endpoints.map((endpoint) => endpoint.bodyLimit)),
      handleProtocols: (protocols) => protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false
    }
  })

  const alive = new WeakSet<WebSocket>()
  if (pingIntervalMs > 0) {
    const timer = setInterval(() => {
      for (const socket of connections.keys()) {
        if (!alive.has(socket)) {
          fastify.log.info({ sessionId: connections.get(socket)?.sessionId }, 'WebSocket peer did not answer a ping; dropping it')
          socket.terminate()
          continue
        }
        alive.delete(socket)
        socket.ping()
      }
    }, pingIntervalMs)
    timer.unref()
    fastify.addHook('onClose', async () => { clearInterval(timer) })
  }

  for (const endpoint of endpoints) {
    const path = `${endpoint.path === '/' ? '' : endpoint.path}${suffix}`
    fastify.route({
      method: 'GET',
      url: path,
      // `config.mcp` puts the upgrade under the MCP endpoints' auth and rate-limit hooks.
      config: { mcp: endpoint.routeConfig },
      onRequest: async (request: FastifyRequest, reply) => {
        const origin = request.headers.origin
        const refuse = (err: Error & { statusCode?: number }, status: number): void => {
          void reply.code(status).type('application/json').send({ jsonrpc: '2.0', id: null, error: { code: status === 403 ? -32050 : -32000, message: err.message } })
        }
        if (origin !== undefined && !endpoint.originAllowed(origin)) {
          refuse(new GatewayErrors.FORBIDDEN_ORIGIN(origin), 403)
          return reply
        }
        const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
        if (request.headers.upgrade?.toLowerCase() === 'websocket' && !protocols.includes(SUBPROTOCOL)) {
          refuse(new Error(`Bad Request: the WebSocket subprotocol "${SUBPROTOCOL}" is required`), 400)
          return reply
        }
        return undefined
      },
      // A plain GET (no upgrade) on the WebSocket path.
      handler: async (_request: FastifyRequest, reply: FastifyReply) => {
        void reply.code(426).header('upgrade', 'websocket').type('application/json')
          .send({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `Upgrade Required: open a WebSocket with subprotocol "${SUBPROTOCOL}"` } })
      },
      wsHandler: (socket: WebSocket, request: FastifyRequest) => {
        markUpgraded(request.raw.socket)
        alive.add(socket)
        socket.on('pong', () => alive.add(socket))
        const connection = new WsConnection({
          socket,
          forwarder: endpoint.forwarder,
          sessions: fastify.mcpSessions,
          upstream: endpoint.upstream,
          headers: request.headers,
          principal: request.mcpPrincipal ?? undefined,
          interceptors: endpoint.interceptors,
          routeConfig: endpoint.routeConfig as unknown as Record<string, unknown>,
          log: request.log,
          maxInFlight: endpoint.maxInFlightPerSession,
          highWaterMark,
          // Prototype keys in frames: what the host decided for its JSON bodies, as over HTTP.
          poisoning: { protoAction: fastify.initialConfig.onProtoPoisoning ?? 'error', constructorAction: fastify.initialConfig.onConstructorPoisoning ?? 'error' },
          onSession: (id) => {
            if (id === undefined) {
              for (const [key, value] of bySession) if (value === connection) bySession.delete(key)
            } else {
              bySession.set(id, connection)
            }
          }
        })
        connections.set(socket, connection)
        socket.on('message', (data, isBinary) => {
          if (isBinary) {
            socket.close(WS_CLOSE.UNSUPPORTED_DATA, 'binary frames are not MCP messages')
            return
          }
          void connection.frame(String(data))
        })
        socket.on('close', () => {
          connections.delete(socket)
          void connection.end()
        })
        socket.on('error', (err) => request.log.debug({ err }, 'WebSocket error'))
      }
    })
  }
}

export default fp(mcpWebSocket, {
  name: 'mcp-gateway-websocket',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions', 'mcp-gateway-proxy']
})
