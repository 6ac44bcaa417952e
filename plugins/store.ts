/**
 * Where sessions and the event log live: in this process (the default, no setup) or in Redis,
 * shared by every gateway instance that names the same Redis and key prefix. The Redis client is
 * `@fastify/redis`'s (`fastify.redis`): the application's own if it registered one, else one this
 * plugin connects, checks and registers.
 */
import fp from 'fastify-plugin'
import type { SharedState } from '../lib/federation/virtual-state.ts'
import { RedisSharedState } from '../lib/redis/shared-state.ts'
import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import type { EventStore } from '../lib/events/store.ts'
import { invalid } from '../lib/options.ts'
import { RedisEventStore } from '../lib/redis/event-store.ts'
import { RedisSessionStore } from '../lib/redis/session-store.ts'
import type { SessionStore } from '../lib/session/store.ts'
import { checkStoreOptions, type McpStoreOptions } from './store-options.ts'

export type { McpStoreOptions } from './store-options.ts'

export interface McpStores {
  type: 'memory' | 'redis'
  /** Undefined for memory: each plugin makes its own. */
  sessions: SessionStore | undefined
  events: EventStore | undefined
  /** Redis: what every key of this gateway starts with (other plugins' keys too). */
  keyPrefix?: string
  /** Redis: small values the instances share (a virtual session's member sessions). */
  shared?: SharedState
  /** Redis: the client the stores use (for plugins with stores of their own, such as pins). */
  client?: Redis
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The stores the gateway plugins use (from the umbrella's `store` option). */
    mcpStores: McpStores
  }
}

/** Client settings for a gateway: fail fast while Redis is away (503), reconnect forever. */
export function gatewayRedisOptions (connectTimeoutMs: number, commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Commands from concurrent requests go out in one write: less CPU per call under load.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000)
  }
}

function redact (url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@')
}

async function connect (url: string, connectTimeoutMs: number, commandTimeoutMs: number): Promise<Redis> {
  const client = new Redis(url, gatewayRedisOptions(connectTimeoutMs, commandTimeoutMs))
  // Until connected, failures reach the caller below, not an 'error' event nobody hears.
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    client.disconnect()
    throw new Error(`cannot reach Redis at ${redact(url)}: ${(err as Error).message}`, { cause: err })
  }
  return client
}

async function mcpStore (fastify: FastifyInstance, options: McpStoreOptions): Promise<void> {
  const checked = checkStoreOptions(options)
  if (checked.type === 'memory') {
    fastify.decorate('mcpStores', { type: 'memory', sessions: undefined, events: undefined })
    return
  }
  const { keyPrefix, connectTimeoutMs, commandTimeoutMs, fallback } = checked

  let client = checked.client ?? (fastify.hasDecorator('redis') ? (fastify as unknown as { redis: Redis }).redis : undefined)
  if (client === undefined) {
    const url = checked.url
    if (url === undefined) throw invalid('store.url', 'must be a redis:// or rediss:// URL')
    try {
      client = await connect(url, connectTimeoutMs, commandTimeoutMs)
    } catch (err) {
      if (fallback === 'fail') throw err
      fastify.log.warn({ err }, 'REDIS UNREACHABLE: running on in-memory stores; sessions and streams are NOT shared with other instances and do not survive a restart')
      fastify.decorate('mcpStores', { type: 'memory', sessions: undefined, events: undefined })
      return
    }
    // Errors surface as 503s on the requests that need Redis; ioredis reconnects by itself.
    let down = false
    let lastError: Error | undefined
    client.on('error', (err: Error) => { lastError = err })
    // 'reconnecting', not 'close': a close at shutdown is not an outage.
    client.on('reconnecting', () => {
      if (!down) fastify.log.error({ err: lastError }, 'lost the connection to Redis; requests that need it get 503 until it returns')
      down = true
    })
    client.on('ready', () => {
      if (down) fastify.log.info('reconnected to Redis')
      down = false
      lastError = undefined
    })
    await fastify.register(fastifyRedis, { client, closeClient: true })
  }
  const events = new RedisEventStore({ client, keyPrefix, retention: checked.retention })
  const sessions = new RedisSessionStore({ client, keyPrefix })
  fastify.decorate('mcpStores', { type: 'redis', sessions, events, keyPrefix, shared: new RedisSharedState(client, keyPrefix), client })
  // Their pub/sub connections are their own; the shared client is closed by its owner.
  fastify.addHook('onClose', async () => { await Promise.all([sessions.close(), events.close()]) })
}

export default fp(mcpStore, { name: 'mcp-gateway-store', fastify: '5.x' })
