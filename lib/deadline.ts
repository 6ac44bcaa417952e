/**
 * Request timeouts that fit MCP: a call may run for minutes as long as it shows signs of life.
 * The clock restarts whenever the upstream sends progress for one of the exchange's requests (or
 * asks the client something on its stream: it is then waiting for the client, not stuck); a
 * hard ceiling holds regardless, as the spec advises. When either fires, the exchange's upstream
 * request is aborted with `MCP_GW_UPSTREAM_TIMEOUT`, which the forwarder turns into
 * `notifications/cancelled` upstream and a JSON-RPC error for the client.
 */
import { Abort } from './abort.ts'
import { GatewayErrors } from './errors.ts'
import { isRequest, type JsonRpcId, type JsonRpcMessage } from './jsonrpc.ts'

export interface TimeoutOptions {
  /**
   * Longest wait for a request's answer with no progress from the upstream; each progress
   * notification for the request restarts it. 0 turns request timeouts off.
   * @default 300000 ms
   */
  requestTimeout?: number
  /**
   * Longest a request may take, progress or not. 0 for no ceiling.
   * @default 3600000 ms
   */
  maxRequestTimeout?: number
  /** `requestTimeout` for calls of particular tools, by tool name. */
  toolTimeouts?: Record<string, number>
}

export const TIMEOUT_DEFAULTS = { requestTimeout: 300_000, maxRequestTimeout: 3_600_000 } as const

export interface CheckedTimeouts {
  requestTimeout: number
  maxRequestTimeout: number
  toolTimeouts: Map<string, number>
}

/** The idle timeout for a POST's requests: the tool's own for a lone tools/call, else the upstream's. */
export function timeoutFor (timeouts: CheckedTimeouts, messages: readonly JsonRpcMessage[]): number {
  if (timeouts.toolTimeouts.size > 0 && messages.length === 1) {
    const message = messages[0] as JsonRpcMessage
    if ('method' in message && message.method === 'tools/call') {
      const name = message.params?.name
      const own = typeof name === 'string' ? timeouts.toolTimeouts.get(name) : undefined
      if (own !== undefined) return own
    }
  }
  return timeouts.requestTimeout
}

export class Deadline {
  /** Aborted when the deadline passes (or when linked to a client that left). */
  readonly abort = new Abort()
  expired = false
  private failure: (Error & { code: string }) | undefined
  private readonly upstream: string
  /** The one request waited for (the common case), or several (a batch). */
  private readonly single: JsonRpcId | undefined
  private readonly waiting: Set<JsonRpcId> | undefined
  private tokens: Set<string | number> | undefined
  private readonly idleMs: number
  private readonly maxMs: number
  private readonly started = Date.now()
  private timer: NodeJS.Timeout | undefined
  /** The timer fires at the ceiling: progress no longer moves it. */
  private atCeiling = false
  private readonly onExpire: (deadline: Deadline) => void

  constructor (upstream: string, idleMs: number, maxMs: number, messages: readonly JsonRpcMessage[], onExpire: (deadline: Deadline) => void) {
    this.upstream = upstream
    this.idleMs = idleMs
    this.maxMs = maxMs
    this.onExpire = onExpire
    let single: JsonRpcId | undefined
    let waiting: Set<JsonRpcId> | undefined
    for (const message of messages) {
      if (!isRequest(message)) continue
      if (single === undefined && waiting === undefined) single = message.id
      else (waiting ??= new Set([single as JsonRpcId])).add(message.id)
      const token = (message.params?._meta as { progressToken?: unknown } | undefined)?.progressToken
      if (typeof token === 'string' || typeof token === 'number') (this.tokens ??= new Set()).add(token)
    }
    this.single = waiting === undefined ? single : undefined
    this.waiting = waiting
    this.arm()
  }

  /** The error a timed-out request gets (made when needed: most requests never time out). */
  get error (): Error & { code: string } {
    this.failure ??= new GatewayErrors.UPSTREAM_TIMEOUT(this.upstream)
    return this.failure
  }

  /** One timer: the idle timeout, or what is left of the ceiling if that comes first. */
  private arm (): void {
    const left = this.maxMs > 0 ? this.maxMs - (Date.now() - this.started) : Number.POSITIVE_INFINITY
    const wait = Math.min(this.idleMs > 0 ? this.idleMs : Number.POSITIVE_INFINITY, left)
    if (wait === Number.POSITIVE_INFINITY) return
    this.atCeiling = wait < this.idleMs || this.idleMs <= 0
    // unref()ed: a request waiting for its upstream keeps no process alive by itself.
    this.timer = setTimeout(() => { this.expire() }, Math.max(0, wait))
    this.timer.unref()
  }

  private expire (): void {
    if (this.expired) return
    this.expired = true
    this.clear()
    // The owner ends what it holds with this deadline's error first; the abort does the rest.
    this.onExpire(this)
    this.abort.abort()
  }

  /**
   * Progress: the idle timeout starts again. The same timer is refreshed (this runs for every
   * progress message), unless what is left of the ceiling is now shorter than the idle timeout:
   * then one last timer waits for the ceiling, and later progress changes nothing.
   */
  private restart (): void {
    if (this.timer === undefined || this.atCeiling) return
    if (this.maxMs <= 0 || this.maxMs - (Date.now() - this.started) >= this.idleMs) {
      this.timer.refresh()
      return
    }
    clearTimeout(this.timer)
    this.arm()
  }

  /** Sees each message from the upstream for this exchange. */
  see (message: JsonRpcMessage): void {
    if (this.timer === undefined) return
    if (!('method' in message)) {
      if (message.id === null) return
      if (this.single !== undefined ? message.id === this.single : this.waiting?.delete(message.id) === true && this.waiting.size === 0) this.clear()
      return
    }
    if (message.method === 'notifications/progress') {
      const token = message.params?.progressToken
      if ((typeof token === 'string' || typeof token === 'number') && this.tokens?.has(token) === true) this.restart()
    } else if ('id' in message) {
      this.restart()
    }
  }

  clear (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}
