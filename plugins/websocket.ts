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
import { invalid } from '../lib/options.ts'
import { WS_CLOSE, WsConnection } from '../lib/ws/connection.ts'
import { checkWebSocketOptions, type McpWebSocketOptions } from './websocket-options.ts'

export { WEBSOCKET_DEFAULTS, type McpWebSocketOptions } from './websocket-options.ts'

const SUBPROTOCOL = 'mcp'

async function mcpWebSocket (fastify: FastifyInstance, options: McpWebSocketOptions): Promise<void> {
  const { suffix, pingIntervalMs, highWaterMark, drainTimeoutMs } = checkWebSocketOptions(options, fastify.initialConfig.pluginTimeout ?? 10_000)
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
