/**
 * The preset's configuration: one JSON object (from a file, flags and environment) that says how
 * to listen and what to proxy. Plugin options are checked again by each plugin; this checks the
 * preset's own fields and the file's shape.
 */
import { readFile } from 'node:fs/promises'
import type { McpGatewayOptions } from '../../plugins/index.ts'
import type { McpStoreOptions } from '../../plugins/store.ts'
import { invalid, isPlainObject, optionalInteger, optionalString } from '../../lib/options.ts'

export interface GatewayConfig extends Omit<McpGatewayOptions, 'store'> {
  /**
   * Interface to listen on. Loopback by default: binding wider exposes the gateway to the network.
   * @default '127.0.0.1'
   */
  host?: string
  /** @default 3000 */
  port?: number
  /**
   * Log level for pino, or false for no logs.
   * @default 'info'
   */
  logLevel?: string | false
  /**
   * Where sessions and the event log live: in this process (`memory`) or in Redis, shared by every
   * instance that names the same Redis and key prefix.
   * @default { type: 'memory' }
   */
  store?: StoreConfig
}

/** The umbrella plugin's `store` option, as a config file can say it (a URL, not a client). */
export type StoreConfig = { type: 'memory' } | (Omit<Extract<McpStoreOptions, { type: 'redis' }>, 'client'> & { url: string })

export const GATEWAY_DEFAULTS = { host: '127.0.0.1', port: 3000, logLevel: 'info' } as const

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

export function checkGatewayConfig (value: unknown): GatewayConfig {
  if (!isPlainObject(value)) throw invalid('config', 'must be a JSON object')
  const config = { ...value } as GatewayConfig & Record<string, unknown>
  if (config.upstream === undefined) throw invalid('upstream', 'is required (the upstream MCP endpoint URL)')
  config.host = optionalString('host', config.host, GATEWAY_DEFAULTS.host)
  config.port = optionalInteger('port', config.port, 0, GATEWAY_DEFAULTS.port)
  if (config.port > 65535) throw invalid('port', 'must be at most 65535')
  const level = config.logLevel ?? GATEWAY_DEFAULTS.logLevel
  if (level !== false && (typeof level !== 'string' || !LOG_LEVELS.has(level))) {
    throw invalid('logLevel', `must be false or one of ${[...LOG_LEVELS].join(', ')}`)
  }
  config.logLevel = level
  const store = config.store
  if (store !== undefined) {
    if (!isPlainObject(store) || (store.type !== 'memory' && store.type !== 'redis')) throw invalid('store', 'must be { "type": "memory" } or { "type": "redis", "url": ... }')
    if (store.type === 'redis') {
      if (typeof store.url !== 'string' || !/^rediss?:\/\//.test(store.url)) throw invalid('store.url', 'must be a redis:// or rediss:// URL')
      if ('client' in store) throw invalid('store.client', 'cannot come from a config file; give store.url')
    }
  }
  return config
}

export async function readConfigFile (path: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw invalid('config', `cannot read ${path}: ${(err as Error).message}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw invalid('config', `${path} is not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(value)) throw invalid('config', `${path} must hold a JSON object`)
  return value
}
