/**
 * Where sessions and the event log live: in this process (the default, no setup) or in Redis,
 * shared by every gateway instance that names the same Redis and key prefix. The Redis client is
 * `@fastify/redis`'s (`fastify.redis`): the application's own if it registered one, else one this
 * plugin connects, checks and registers.
 */
import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import type { EventStore, Retention } from '../lib/events/store.ts'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger, optionalString } from '../lib/options.ts'
import { RedisEventStore } from '../lib/redis/event-store.ts'
import { RedisSessionStore } from '../lib/redis/session-store.ts'
import type { SessionStore } from '../lib/session/store.ts'

export type McpStoreOptions =
  | { type: 'memory' }
  | {
    type: 'redis'
    /** `redis://` or `rediss://` URL; ignored when a client is given or `fastify.redis` exists. */
    url?: string
    /** An ioredis client the application owns (not closed by the gateway). */
    client?: Redis
    /**
     * Prefix of every key; give each gateway deployment its own.
     * @default 'mcp-gw:'
     */
    keyPrefix?: string
    /**
     * How long the first connection may take before start fails.
     * @default 5000
     */
    connectTimeoutMs?: number
    /**
     * Longest a Redis command may take before the request needing it gets 503.
     * @default 2000
     */
    commandTimeoutMs?: number
    /**
     * When Redis cannot be reached at start: `fail` (start fails) or `memory` (run on in-process
     * stores with a loud warning: nothing is shared with other instances).
     * @default 'fail'
     */
    fallback?: 'fail' | 'memory'
    /**
     * Retention of the Redis event log.
     * @default the umbrella plugin passes `streaming.retention`
     */
    retention?: Partial<Retention>
  }

export interface McpStores {
  type: 'memory' | 'redis'
  /** Undefined for memory: each plugin makes its own. */
  sessions: SessionStore | undefined
  events: EventStore | undefined
  /** Redis: what every key of this gateway starts with (other plugins' keys too). */
  keyPrefix?: string
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
  if (!isPlainObject(options) || (options.type !== 'memory' && options.type !== 'redis')) {
    throw invalid('store', 'must be { type: "memory" } or { type: "redis", url | client, ... }')
  }
  knownKeys('store', options, options.type === 'memory' ? ['type', ...REGISTER_OPTION_KEYS] : [...REGISTER_OPTION_KEYS, 'type', 'url', 'client', 'keyPrefix', 'connectTimeoutMs', 'commandTimeoutMs', 'fallback', 'retention'])
  if (options.type === 'memory') {
    fastify.decorate('mcpStores', { type: 'memory', sessions: undefined, events: undefined })
    return
  }
  const keyPrefix = optionalString('store.keyPrefix', options.keyPrefix, 'mcp-gw:')
  const connectTimeoutMs = optionalInteger('store.connectTimeoutMs', options.connectTimeoutMs, 1, 5000)
  const commandTimeoutMs = optionalInteger('store.commandTimeoutMs', options.commandTimeoutMs, 1, 2000)
  const fallback = options.fallback ?? 'fail'
  if (fallback !== 'fail' && fallback !== 'memory') throw invalid('store.fallback', 'must be "fail" or "memory"')
  if (options.client !== undefined && !(options.client instanceof Redis)) throw invalid('store.client', 'must be an ioredis client')

  let client = options.client ?? (fastify.hasDecorator('redis') ? (fastify as unknown as { redis: Redis }).redis : undefined)
  if (client === undefined) {
    const url = options.url
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw invalid('store.url', 'must be a redis:// or rediss:// URL')
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
  if (options.retention !== undefined && !isPlainObject(options.retention)) throw invalid('store.retention', 'must be an object')
  const events = new RedisEventStore({ client, keyPrefix, retention: options.retention })
  const sessions = new RedisSessionStore({ client, keyPrefix })
  fastify.decorate('mcpStores', { type: 'redis', sessions, events, keyPrefix })
  // Their pub/sub connections are their own; the shared client is closed by its owner.
  fastify.addHook('onClose', async () => { await Promise.all([sessions.close(), events.close()]) })
}

export default fp(mcpStore, { name: 'mcp-gateway-store', fastify: '5.x' })
