/**
 * The interceptor chain: an ordered list of async handlers that see each JSON-RPC message crossing
 * the gateway, in either direction, and decide what happens to it: continue, modify, block,
 * respond (a mock), delay or drop. Framework-free; the proxy runs it on every message of a POST
 * body, of a JSON answer and of every SSE stream.
 */
import type { MemberName, UpstreamKind } from '../upstream/types.ts'
import type { Abort } from '../abort.ts'
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { errorResponse, messageKind, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest, type MessageKind } from '../jsonrpc.ts'
import { globMatcher, type GlobMatcher } from '../glob.ts'
import type { Logger } from '../logger.ts'
import type { Direction } from '../observer.ts'
import type { SessionRecord } from '../session/store.ts'
import type { Principal } from '../auth/principal.ts'

export type { MessageKind }

export interface InterceptorMatch {
  direction?: Direction | Direction[]
  kind?: MessageKind | MessageKind[]
  /** JSON-RPC method(s); a response matches the method of the request it answers. */
  method?: string | string[]
  /**
   * Tool name glob (`*` any run of characters, line terminators included; nothing else is special)
   * for `tools/call` requests and their answers. Matched in linear time (see lib/glob.ts).
   */
  tool?: string
  /** Only messages of sessions this accepts. */
  session?: (session: SessionRecord | undefined) => boolean
}

export interface InterceptorContext {
  direction: Direction
  kind: MessageKind
  session: SessionRecord | undefined
  /** Who sent the request this message belongs to, when inbound auth is on. */
  principal?: Principal
  upstream: string
  /**
   * Behind a virtual server: the member upstream an exposed tool (or prompt) name stands for, and
   * its own name there. Absent for other upstreams. Tool globs (`match.tool`, auth tool rules)
   * match the exposed name, or `<member upstream>/<its own name>` (`memory/create_*`).
   */
  memberOf?: (kind: 'tools' | 'prompts', exposed: string) => MemberName | undefined
  /** The client request's headers (HTTP; a WebSocket's are its upgrade request's), when the adapter has them. */
  headers?: Record<string, string | string[] | undefined>
  /** What the endpoint's upstream is: its kind, and its era once known. */
  endpoint?: { readonly kind: UpstreamKind, readonly era?: '2025' | '2026' | undefined }
  /** The route's `config.mcp` (route-level settings), when there is one. */
  config: Record<string, unknown> | undefined
  log: Logger
  /** For a response or error: the request it answers, when the gateway saw it. */
  request: JsonRpcRequest | undefined
  /**
   * Fires when nobody waits for this message any more (the client left). The chain then stops:
   * a delay's timer is cleared, no later handler runs, and the message is dropped. Asynchronous
   * handlers may watch it to stop their own work. Absent: the message always goes the whole way.
   */
  signal?: Abort
}

/**
 * Whether a tool glob matches a tool: its exposed name, or behind a virtual server its member's
 * `<upstream>/<own name>` (tool names cannot hold "/", so the two never mix up).
 */
export function toolMatches (glob: GlobMatcher, exposed: string, ctx: Pick<InterceptorContext, 'memberOf'>): boolean {
  if (glob.test(exposed)) return true
  const member = ctx.memberOf?.('tools', exposed)
  return member !== undefined && glob.test(`${member.upstream}/${member.name}`)
}

export type InterceptorAction =
  | { action: 'continue' }
  | { action: 'modify', message: JsonRpcMessage }
  /** `data`: the JSON-RPC error's `data` (a policy names its rule there). */
  | { action: 'block', reason?: string, data?: Record<string, unknown> }
  | { action: 'respond', result: unknown }
  | { action: 'delay', ms: number }
  | { action: 'drop' }

export interface Interceptor {
  name: string
  match?: InterceptorMatch
  /** Resolve nothing (or `continue`) to let the message through unchanged. */
  handler: (message: JsonRpcMessage, ctx: InterceptorContext) => InterceptorAction | undefined | void | Promise<InterceptorAction | undefined | void>
  /** Longest the handler may take, in ms. @default the chain's `timeoutMs` */
  timeoutMs?: number
}

export interface ChainOptions {
  /**
   * What a handler that throws or times out means: `closed` blocks the message (a request gets a
   * JSON-RPC error, anything else is dropped), `open` lets it through unchanged. Logged either way.
   * @default 'closed'
   */
  onError: 'closed' | 'open'
  /** @default 5000 */
  timeoutMs: number
}

export const CHAIN_DEFAULTS: ChainOptions = { onError: 'closed', timeoutMs: 5000 }

/** What the chain decided for one message. */
export type Outcome =
  /** Send on (possibly changed). */
  | { kind: 'forward', message: JsonRpcMessage }
  /** Not sent on; for a request, `answer` goes back to its sender. */
  | { kind: 'answer', answer: JsonRpcMessage }
  /** Not sent on; nobody is told (notifications, responses blocked on their way). */
  | { kind: 'drop' }

const asList = <T>(value: T | T[] | undefined): T[] | undefined => value === undefined ? undefined : Array.isArray(value) ? value : [value]

interface Compiled {
  interceptor: Interceptor
  directions: Direction[] | undefined
  kinds: MessageKind[] | undefined
  methods: string[] | undefined
  tool: GlobMatcher | undefined
}

/**
 * A message's context from what its exchange shares. Written out field by field, not spread: V8
 * builds a literal of a spread object plus more keys on a slow path, microseconds per message
 * (measured: three such spreads were ~20 µs of a tools/call with interceptors on).
 */
export function contextFor (base: Omit<InterceptorContext, 'kind' | 'direction' | 'request'>, direction: Direction, kind: MessageKind, request: JsonRpcRequest | undefined): InterceptorContext {
  return {
    direction,
    kind,
    session: base.session,
    principal: base.principal,
    upstream: base.upstream,
    memberOf: base.memberOf,
    headers: base.headers,
    endpoint: base.endpoint,
    config: base.config,
    log: base.log,
    request,
    signal: base.signal
  }
}

export function blockedError (id: JsonRpcId, reason: string | undefined, data?: Record<string, unknown>): JsonRpcMessage {
  const { code, message } = toJsonRpcError(new GatewayErrors.BLOCKED(reason ?? 'blocked by gateway policy')).body.error
  return errorResponse(id, code, message, data)
}

export class InterceptorChain {
  readonly options: ChainOptions
  private compiled: Compiled[] = []
  /** Bumped by every change, so composed chains know to rebuild. */
  version = 0
  /** Decisions taken since start, by action (shared with chains composed from this one). */
  counts: Record<'modify' | 'block' | 'respond' | 'delay' | 'drop' | 'error', number> = { modify: 0, block: 0, respond: 0, delay: 0, drop: 0, error: 0 }

  constructor (options: Partial<ChainOptions> = {}, interceptors: Interceptor[] = []) {
    this.options = { ...CHAIN_DEFAULTS, ...options }
    for (const interceptor of interceptors) this.add(interceptor)
  }

  get size (): number {
    return this.compiled.length
  }

  get interceptors (): Interceptor[] {
    return this.compiled.map((c) => c.interceptor)
  }

  /** Whether any interceptor may act on messages going this way (else the proxy skips the work). */
  watches (direction: Direction): boolean {
    return this.compiled.some((c) => c.directions === undefined || c.directions.includes(direction))
  }

  /** Appends an interceptor (it runs after those already there). */
  add (interceptor: Interceptor): this {
    if (typeof interceptor !== 'object' || interceptor === null || typeof interceptor.handler !== 'function' || typeof interceptor.name !== 'string') {
      throw new GatewayErrors.INVALID_OPTION('interceptor', 'must be { name: string, handler: function, match?: object }')
    }
    const match = interceptor.match ?? {}
    this.compiled.push({
      interceptor,
      directions: asList(match.direction),
      kinds: asList(match.kind),
      methods: asList(match.method),
      tool: match.tool === undefined ? undefined : globMatcher(match.tool)
    })
    this.version++
    return this
  }

  remove (name: string): boolean {
    const before = this.compiled.length
    this.compiled = this.compiled.filter((c) => c.interceptor.name !== name)
    this.version++
    return this.compiled.length < before
  }

  /** A chain running this one's interceptors, then `more` (route-level ones). */
  with (more: Interceptor[]): InterceptorChain {
    const chain = new InterceptorChain(this.options, [...this.interceptors, ...more])
    chain.counts = this.counts
    return chain
  }

  private matches (c: Compiled, message: JsonRpcMessage, ctx: InterceptorContext): boolean {
    if (c.directions !== undefined && !c.directions.includes(ctx.direction)) return false
    if (c.kinds !== undefined && !c.kinds.includes(ctx.kind)) return false
    const method = 'method' in message ? message.method : ctx.request?.method
    if (c.methods !== undefined && (method === undefined || !c.methods.includes(method))) return false
    if (c.tool !== undefined) {
      const call = 'method' in message ? message : ctx.request
      const name = call?.method === 'tools/call' ? call.params?.name : undefined
      if (typeof name !== 'string' || !toolMatches(c.tool, name, ctx)) return false
    }
    if (c.interceptor.match?.session !== undefined && !c.interceptor.match.session(ctx.session)) return false
    return true
  }

  /**
   * Runs the chain on one message. Synchronous while every handler answers synchronously (the
   * common case: no promise, no tick); from the first handler that returns a promise or asks for a
   * delay, the rest runs asynchronously.
   */
  run (message: JsonRpcMessage, base: Omit<InterceptorContext, 'kind'>): Outcome | Promise<Outcome> {
    return this.from(0, message, contextFor(base, base.direction, messageKind(message) as MessageKind, base.request))
  }

  private from (start: number, message: JsonRpcMessage, ctx: InterceptorContext): Outcome | Promise<Outcome> {
    let current = message
    for (let i = start; i < this.compiled.length; i++) {
      // Nobody waits for it any more (checked again after every asynchronous step).
      if (ctx.signal?.aborted === true) return { kind: 'drop' }
      const c = this.compiled[i] as Compiled
      if (!this.matches(c, current, ctx)) continue
      let called: ReturnType<InterceptorChain['call']>
      try {
        called = this.call(c.interceptor, current, ctx)
      } catch (err) {
        const failed = this.failed(c, current, ctx, err)
        if (failed === undefined) continue
        return failed
      }
      if (called instanceof Promise) {
        const at = current
        return called.then(
          (action) => this.decided(i, c, at, ctx, action),
          (err: unknown) => this.failed(c, at, ctx, err) ?? this.from(i + 1, at, ctx)
        )
      }
      const next = this.decide(c, current, ctx, called)
      if (next === undefined) continue
      if ('kind' in next) return next
      if ('delay' in next) {
        const at = current
        return this.delay(next.delay, ctx.signal).then((elapsed) => elapsed ? this.from(i + 1, at, ctx) : { kind: 'drop' })
      }
      current = next.message
    }
    return { kind: 'forward', message: current }
  }

  /** After an asynchronous handler: apply its action, then go on from the next interceptor. */
  private decided (i: number, c: Compiled, current: JsonRpcMessage, ctx: InterceptorContext, action: InterceptorAction | undefined | void): Outcome | Promise<Outcome> {
    const next = this.decide(c, current, ctx, action)
    if (next === undefined) return this.from(i + 1, current, ctx)
    if ('kind' in next) return next
    if ('delay' in next) return this.delay(next.delay, ctx.signal).then((elapsed) => elapsed ? this.from(i + 1, current, ctx) : { kind: 'drop' })
    return this.from(i + 1, next.message, ctx)
  }

  /**
   * Waits `ms`: true once the time is up, false as soon as `signal` fires (the timer is then
   * cleared). unref()ed: a delayed message keeps no process alive on its own.
   */
  private delay (ms: number, signal: Abort | undefined): Promise<boolean> {
    if (signal?.aborted === true) return Promise.resolve(false)
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer)
        resolve(false)
      }
      const timer = setTimeout(() => {
        signal?.off('abort', onAbort)
        resolve(true)
      }, ms)
      timer.unref()
      signal?.once('abort', onAbort)
    })
  }

  /** A failed handler: undefined to go on (fail-open), else what its message becomes. */
  private failed (c: Compiled, current: JsonRpcMessage, ctx: InterceptorContext, err: unknown): Outcome | undefined {
    this.counts.error++
    ctx.log.error({ interceptor: c.interceptor.name, err, policy: this.options.onError }, 'interceptor failed')
    return this.options.onError === 'open' ? undefined : this.stop(current, ctx.kind, 'interceptor failed')
  }

  /** One action: undefined (go on unchanged), a new message, a delay, or the final outcome. */
  private decide (c: Compiled, current: JsonRpcMessage, ctx: InterceptorContext, action: InterceptorAction | undefined | void): Outcome | { message: JsonRpcMessage } | { delay: number } | undefined {
    if (action === undefined || action === null || action.action === 'continue') return undefined
    if (action.action in this.counts) this.counts[action.action as keyof InterceptorChain['counts']]++
    const kind = ctx.kind
    switch (action.action) {
      case 'modify':
        if (messageKind(action.message) === undefined) return this.failed(c, current, ctx, new Error('returned an invalid JSON-RPC message'))
        return { message: action.message }
      case 'delay':
        return { delay: Math.max(0, action.ms) }
      case 'block':
        ctx.log.info({ interceptor: c.interceptor.name, direction: ctx.direction }, 'message blocked')
        return this.stop(current, kind, action.reason, action.data)
      case 'respond':
        if (kind !== 'request') {
          ctx.log.warn({ interceptor: c.interceptor.name }, 'respond applies to requests only; message dropped')
          return { kind: 'drop' }
        }
        return { kind: 'answer', answer: { jsonrpc: '2.0', id: (current as JsonRpcRequest).id, result: action.result } as JsonRpcMessage }
      case 'drop':
        if (kind !== 'notification') {
          ctx.log.warn({ interceptor: c.interceptor.name, kind }, 'drop applies to notifications only; blocked instead')
          return this.stop(current, kind, undefined)
        }
        return { kind: 'drop' }
      default:
        return this.failed(c, current, ctx, new Error('returned an unknown action'))
    }
  }

  /** A blocked request is answered with an error for its id; anything else goes nowhere. */
  private stop (message: JsonRpcMessage, kind: MessageKind, reason: string | undefined, data?: Record<string, unknown>): Outcome {
    if (kind === 'request') return { kind: 'answer', answer: blockedError((message as JsonRpcRequest).id, reason, data) }
    if (kind === 'response' || kind === 'error') {
      // The requester must not wait forever: it gets an error for its id instead.
      return { kind: 'forward', message: blockedError((message as { id: JsonRpcId }).id, reason) }
    }
    return { kind: 'drop' }
  }

  /**
   * Calls a handler. A synchronous answer is used as it is (no timer, no extra tick: the common
   * case costs next to nothing); a promise races the time limit.
   */
  private call (interceptor: Interceptor, message: JsonRpcMessage, ctx: InterceptorContext): InterceptorAction | undefined | void | Promise<InterceptorAction | undefined | void> {
    const result = interceptor.handler(message, ctx)
    if (!(result instanceof Promise)) return result
    const ms = interceptor.timeoutMs ?? this.options.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`interceptor ${interceptor.name} took longer than ${ms} ms`)), ms)
      timer.unref()
    })
    return Promise.race([result, timeout]).finally(() => clearTimeout(timer))
  }
}
