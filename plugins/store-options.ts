/**
 * The store plugin's options: one schema gives their type, their defaults, the check that runs once
 * at register and their part of the config file's JSON Schema (where a Redis store needs its
 * `url`: a file cannot hold a client).
 */
import { Redis } from 'ioredis'
import { codeOnly, codeValue, int, nonEmptyString, parseOptions, pluginSchema, section, z, type SectionInput } from '../lib/options.ts'
import { retentionSchema } from './streaming-options.ts'

const REDIS_URL = /^rediss?:\/\//
const REDIS_URL_MESSAGE = 'must be a redis:// or rediss:// URL'
const redisUrl = z.string({ error: REDIS_URL_MESSAGE }).regex(REDIS_URL, { error: REDIS_URL_MESSAGE })

const memoryShape = { type: z.literal('memory') }

const redisShape = {
  type: z.literal('redis'),
  /** `redis://` or `rediss://` URL; ignored when a client is given or `fastify.redis` exists. */
  url: redisUrl.optional(),
  /** An ioredis client the application owns (not closed by the gateway). Code only. */
  client: codeValue<Redis>((value) => value instanceof Redis ? undefined : 'must be an ioredis client').optional(),
  /**
   * Prefix of every key; give each gateway deployment its own.
   * @default 'mcp-gw:'
   */
  keyPrefix: nonEmptyString().default('mcp-gw:').meta({ description: 'Prefix of every key; give each gateway deployment its own.' }),
  /**
   * How long the first connection may take before start fails.
   * @default 5000
   */
  connectTimeoutMs: int(1).default(5000).meta({ description: 'Time to reach Redis at start.' }),
  /**
   * Longest a Redis command may take before the request needing it gets 503.
   * @default 2000
   */
  commandTimeoutMs: int(1).default(2000).meta({ description: 'Time a Redis command may take before requests get 503.' }),
  /**
   * When Redis cannot be reached at start: `fail` (start fails) or `memory` (run on in-process
   * stores with a loud warning: nothing is shared with other instances).
   * @default 'fail'
   */
  fallback: z.enum(['fail', 'memory']).default('fail').meta({ description: 'Redis unreachable at start: fail, or run on in-process stores (nothing shared).' }),
  /**
   * Retention of the Redis event log.
   * @default the umbrella plugin passes `streaming.retention`
   */
  retention: retentionSchema.optional()
}

const STORE_MESSAGE = 'must be { type: "memory" } or { type: "redis", url | client, ... }'

/** As the umbrella plugin holds it. */
export const storeSchema = z.discriminatedUnion('type', [section(memoryShape), section(redisShape)], { error: STORE_MESSAGE })

/** As the store plugin's `register()` gets it (with Fastify's own keys). */
const storePluginSchema = z.discriminatedUnion('type', [pluginSchema(memoryShape), pluginSchema(redisShape)], { error: STORE_MESSAGE })

/**
 * The store as a config file says it: a Redis store needs its `url` (a file cannot hold a client;
 * one given anyway is refused by name).
 */
const redisFileShape = {
  ...redisShape,
  url: redisUrl,
  client: codeOnly(z.never({ error: 'cannot come from a config file; give store.url' })).optional()
}
export const storeFileSchema = z.discriminatedUnion('type', [section(memoryShape), section(redisFileShape)], { error: 'must be { "type": "memory" } or { "type": "redis", "url": ... }' })

export type McpStoreOptions = SectionInput<typeof memoryShape> | SectionInput<typeof redisShape>
export type StoreConfig = SectionInput<typeof memoryShape> | Omit<SectionInput<typeof redisFileShape>, 'client'>

export type CheckedStoreOptions = { type: 'memory' } | z.output<ReturnType<typeof section<typeof redisShape>>>

export function checkStoreOptions (options: McpStoreOptions): CheckedStoreOptions {
  return parseOptions(storePluginSchema, 'store', options)
}
