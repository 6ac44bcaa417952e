/** The bundled server preset: a Fastify instance with the gateway registered, from one config. */
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import mcpGateway from '../../plugins/index.ts'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { RedisSessionStore } from '../../lib/redis/session-store.ts'
import { checkGatewayConfig, type GatewayConfig, type StoreConfig } from './config.ts'

export type { GatewayConfig, StoreConfig } from './config.ts'

/** Connects to Redis, or fails with a message that says where and why. */
async function connectRedis (store: Extract<StoreConfig, { type: 'redis' }>): Promise<Redis> {
  const client = new Redis(store.url, { lazyConnect: true, connectTimeout: store.connectTimeoutMs ?? 5000, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    client.disconnect()
    throw new Error(`cannot reach Redis at ${store.url.replace(/\/\/[^@]*@/, '//***@')}: ${(err as Error).message}`, { cause: err })
  }
  return client
}

/** Builds (does not start) a gateway server. Call `listen({ host: config.host, port: config.port })`. */
export async function createGateway (config: GatewayConfig): Promise<FastifyInstance> {
  const checked = checkGatewayConfig(config)
  const { host: _host, port: _port, logLevel, store, ...plugin } = checked
  const redis = store?.type === 'redis' ? await connectRedis(store) : undefined
  const app = Fastify({
    logger: logLevel === false ? false : { level: logLevel as string },
    // The MCP endpoint sets its own limit; this one covers any other route.
    bodyLimit: plugin.bodyLimit ?? 4 * 1024 * 1024
  })
  if (redis !== undefined && store?.type === 'redis') {
    const keyPrefix = store.keyPrefix ?? 'mcp-gw:'
    plugin.sessions = { ...plugin.sessions, store: new RedisSessionStore({ client: redis, keyPrefix }) }
    if (plugin.streaming !== false) plugin.streaming = { ...plugin.streaming, store: new RedisEventStore({ client: redis, keyPrefix, retention: plugin.streaming?.retention }) }
    // Last: the stores are closed with the plugins first, then the client they share.
    app.addHook('onClose', async () => { await redis.quit() })
  }
  await app.register(mcpGateway, plugin)
  return app
}
