/**
 * Hooks for whoever watches traffic (metrics, tracing): told about each message crossing the
 * gateway and each upstream request. Free when nobody watches: the forwarder checks the list's
 * length before building anything.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { JsonRpcMessage } from './jsonrpc.ts'
import type { DropReason } from './relay/pending.ts'

export type Direction = 'client_to_upstream' | 'upstream_to_client'

/** What a tracer learns about a POST exchange when it starts. */
export interface ExchangeStart {
  upstream: string
  /** The first message's method (label-safe), or "batch". */
  method: string
  /** `params.name` of a `tools/call`. */
  toolName: string | undefined
  sessionId: string | undefined
  /** The client's request headers (for incoming trace context). */
  incoming: IncomingHttpHeaders
}

/** A traced exchange: headers to send upstream (trace context) and its end. */
export interface ExchangeTrace {
  headers: Record<string, string>
  /** W3C traceparent value, also put in `_meta` of 2026-07-28 requests. */
  traceparent: string | undefined
  /** `outcome`: HTTP status of the answer, or the gateway error code. */
  end (outcome: number | string): void
}

export interface ExchangeObserver {
  /** Starts a trace for one POST exchange (one observer at most should return one). */
  start? (info: ExchangeStart): ExchangeTrace | undefined
  /** `session`: the gateway's session id, when the message belongs to one. */
  message? (direction: Direction, message: JsonRpcMessage, upstream: string, session?: string): void
  /** `outcome`: the upstream's HTTP status, or the gateway error code when there was none. */
  upstreamRequest? (upstream: string, method: string, seconds: number, outcome: number | string): void
  /** The gateway answered a request with an error (`code` from the error table, or the status). */
  refused? (upstream: string, code: string, status: number): void
  /**
   * The upstream sent a response the gateway did not pass on: to no request of the exchange
   * (`stray`), a second one (`duplicate`), or one to a request the client cancelled (`cancelled`).
   */
  dropped? (upstream: string, reason: DropReason): void
  /** A limit was hit: a request body over `bodyLimit` (refused), a tool result over `resultLimits`. */
  limited? (upstream: string, limit: 'body' | 'result', action: 'truncated' | 'refused'): void
  /** A POST forwarded, by the client's protocol era and the upstream's (`unknown` until found). */
  era? (upstream: string, clientEra: '2025' | '2026', upstreamEra: '2025' | '2026' | 'unknown'): void
}

/** Methods of the MCP spec (both eras), usable as a metric label; anything else is "other". */
export const KNOWN_METHODS = new Set([
  'initialize', 'ping', 'server/discover', 'subscriptions/listen',
  'tools/list', 'tools/call', 'resources/list', 'resources/templates/list', 'resources/read',
  'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete',
  'logging/setLevel', 'sampling/createMessage', 'elicitation/create', 'roots/list',
  'tasks/get', 'tasks/result', 'tasks/list', 'tasks/cancel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/message',
  'notifications/resources/updated', 'notifications/resources/list_changed', 'notifications/tools/list_changed',
  'notifications/prompts/list_changed', 'notifications/roots/list_changed', 'notifications/elicitation/complete',
  'notifications/tasks/status', 'notifications/subscriptions/acknowledged'
])

/** A method as a metric label: MCP methods as they are, anything else "other". */
export function methodLabel (method: string): string {
  return KNOWN_METHODS.has(method) || method === 'batch' || method === 'response' ? method : 'other'
}
