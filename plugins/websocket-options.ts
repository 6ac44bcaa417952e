/**
 * The WebSocket plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import { int, parseOptions, pluginSchema, routePath, type SectionInput } from '../lib/options.ts'
import { DRAIN_TIMEOUT_MS, drainFor } from './streaming-options.ts'

/** The drain's default comes from `drainFor` (it depends on the host's pluginTimeout). */
export const WEBSOCKET_DEFAULTS = { suffix: '/ws', pingIntervalMs: 30_000, highWaterMark: 8 * 1024 * 1024 } as const

export const websocketShape = {
  /**
   * Path of each endpoint's WebSocket, appended to the endpoint's own path.
   * @default '/ws'
   */
  suffix: routePath().default(WEBSOCKET_DEFAULTS.suffix),
  /** Interval of WebSocket pings; a peer that has not answered the last one is dropped. 0: off. @default 30000 ms */
  pingIntervalMs: int(0).default(WEBSOCKET_DEFAULTS.pingIntervalMs).meta({ description: 'WebSocket pings; 0: off.' }),
  /** Bytes waiting to be sent past which a slow reader is closed with 4001. @default 8 MiB */
  highWaterMark: int(1024).default(WEBSOCKET_DEFAULTS.highWaterMark).meta({ description: 'Unsent bytes before a slow reader is closed (4001).' }),
  /**
   * At shutdown, longest wait for in-flight calls before closing with 1001. Like the streaming
   * plugin's drain it must fit in the host's `pluginTimeout` with `DRAIN_MARGIN_MS` to spare.
   * @default 10000 ms, or less to fit (8000 with Fastify's default pluginTimeout of 10 s)
   */
  drainTimeoutMs: int(0).optional().meta({ description: 'At shutdown, longest wait for in-flight calls.', default: DRAIN_TIMEOUT_MS })
}

export const websocketSchema = pluginSchema(websocketShape)

export type McpWebSocketOptions = SectionInput<typeof websocketShape>

export interface CheckedWebSocketOptions {
  suffix: string
  pingIntervalMs: number
  highWaterMark: number
  drainTimeoutMs: number
}

/** `pluginTimeout` is the host's: the drain must fit in it. */
export function checkWebSocketOptions (options: McpWebSocketOptions, pluginTimeout: number): CheckedWebSocketOptions {
  const { suffix, pingIntervalMs, highWaterMark, drainTimeoutMs } = parseOptions(websocketSchema, 'websocket', options)
  // Its drain runs in the core plugin's preClose hook, which Fastify cuts at pluginTimeout: fit it.
  return { suffix, pingIntervalMs, highWaterMark, drainTimeoutMs: drainFor('websocket.drainTimeoutMs', drainTimeoutMs, pluginTimeout) }
}
