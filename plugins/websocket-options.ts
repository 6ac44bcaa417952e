/**
 * The WebSocket plugin's options: types, defaults and the check that runs once at register.
 */
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger, optionalString } from '../lib/options.ts'
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

export interface CheckedWebSocketOptions {
  suffix: string
  pingIntervalMs: number
  highWaterMark: number
  drainTimeoutMs: number
}

/** `pluginTimeout` is the host's: the drain must fit in it. */
export function checkWebSocketOptions (options: McpWebSocketOptions, pluginTimeout: number): CheckedWebSocketOptions {
  if (!isPlainObject(options as unknown)) throw invalid('websocket', 'must be an object')
  knownKeys('websocket', options as unknown as Record<string, unknown>, [...REGISTER_OPTION_KEYS, 'suffix', 'pingIntervalMs', 'highWaterMark', 'drainTimeoutMs'])
  const suffix = optionalString('websocket.suffix', options.suffix, WEBSOCKET_DEFAULTS.suffix)
  if (!suffix.startsWith('/')) throw invalid('websocket.suffix', 'must start with "/"')
  const pingIntervalMs = optionalInteger('websocket.pingIntervalMs', options.pingIntervalMs, 0, WEBSOCKET_DEFAULTS.pingIntervalMs)
  const highWaterMark = optionalInteger('websocket.highWaterMark', options.highWaterMark, 1024, WEBSOCKET_DEFAULTS.highWaterMark)
  // Its drain runs in the core plugin's preClose hook, which Fastify cuts at pluginTimeout: fit it.
  const drainTimeoutMs = drainFor('websocket.drainTimeoutMs', options.drainTimeoutMs, pluginTimeout)
  return { suffix, pingIntervalMs, highWaterMark, drainTimeoutMs }
}
