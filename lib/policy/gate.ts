/**
 * The policy at work: two interceptors on the gateway's chain, so it holds on every client
 * transport (HTTP, WebSocket), in both eras, on single and virtual-server endpoints alike.
 * - Every client request is decided before it leaves the gateway; a denied one is answered with
 *   -32055, the rule's message, and `data: { rule, effect }`.
 * - Every list answer (`tools/list`, `prompts/list`, `resources/list`, templates) loses the entries
 *   the rules would deny for every call of them (policy.ts `listable`).
 * The policy in force is swapped whole (a reload): a request is decided by the one in force when
 * it arrived. Tools' annotations are learned from the lists that pass, per upstream.
 */
import { LRUCache } from 'lru-cache'
import type { Interceptor, InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcMessage, JsonRpcRequest } from '../jsonrpc.ts'
import { PolicyAnnotations } from './cel-env.ts'
import { argumentsOf, namedBy, policyBase, policyInput, type Named } from './input.ts'
import { MCP_PARAM } from './analysis.ts'
import type { Effect, Policy } from './policy.ts'

type Item = Record<string, unknown>

/** What a list cannot know of the calls its entries stand for: their arguments (also as headers). */
const LIST_UNKNOWN = ['arguments', MCP_PARAM]

/** Per list: where its entries are, the call each stands for, and what it names. */
const LISTS: Record<string, { field: string, call: string, named: (item: Item) => Named | undefined, unknown: readonly string[] }> = {
  'tools/list': {
    field: 'tools',
    call: 'tools/call',
    named: (item) => typeof item.name === 'string' ? { tool: { name: item.name, annotations: item.annotations as Item | undefined } } : undefined,
    unknown: LIST_UNKNOWN
  },
  'prompts/list': { field: 'prompts', call: 'prompts/get', named: (item) => typeof item.name === 'string' ? { prompt: item.name } : undefined, unknown: LIST_UNKNOWN },
  'resources/list': { field: 'resources', call: 'resources/read', named: (item) => typeof item.uri === 'string' ? { resource: item.uri } : undefined, unknown: LIST_UNKNOWN },
  // A template is no URI: rules on `resource` decide at the read.
  'resources/templates/list': { field: 'resourceTemplates', call: 'resources/read', named: () => ({}), unknown: [...LIST_UNKNOWN, 'resource'] }
}

/** Most tools whose annotations are kept (across upstreams). */
const ANNOTATIONS_KEPT = 50_000

export class PolicyGate {
  private current: Policy
  /** Loaded policies since start (the first is 1); a reload that failed leaves it. */
  version = 1
  /** Whether the last reload failed (the policy in force is the one before it). */
  reloadFailed = false
  /** Decisions since start, by the rule that decided (`(default)` when none did) and effect. */
  readonly decisions = new Map<string, Record<Effect, number>>()
  /**
   * Told of every decision on a request (the audit log), with the deciding rule or `(default)`,
   * and for a denial the message the client gets.
   */
  onDecision: ((request: JsonRpcRequest, ctx: InterceptorContext, effect: Effect, rule: string, reason: string | undefined) => void) | undefined
  private readonly annotations = new LRUCache<string, PolicyAnnotations>({ max: ANNOTATIONS_KEPT })

  constructor (policy: Policy) {
    this.current = policy
  }

  get policy (): Policy { return this.current }

  /** Puts `policy` in force for every request from now on. */
  swap (policy: Policy): void {
    this.current = policy
    this.version++
    this.reloadFailed = false
  }

  interceptors (): Interceptor[] {
    return [
      {
        name: 'policy:requests',
        match: { direction: 'client_to_upstream', kind: 'request' },
        handler: (message, ctx) => failClosed(ctx, 'decide on the request', () => this.request(message as JsonRpcRequest, ctx))
      },
      {
        name: 'policy:lists',
        match: { direction: 'upstream_to_client', kind: 'response', method: Object.keys(LISTS) },
        handler: (message, ctx) => failClosed(ctx, 'filter the list', () => this.list(message, ctx))
      }
    ]
  }

  private count (rule: string, effect: Effect): void {
    const counts = this.decisions.get(rule)
    if (counts === undefined) this.decisions.set(rule, { allow: effect === 'allow' ? 1 : 0, deny: effect === 'deny' ? 1 : 0 })
    else counts[effect]++
  }

  private request (request: JsonRpcRequest, ctx: InterceptorContext): { action: 'block', reason: string, data: Record<string, unknown> } | undefined {
    const policy = this.current
    if (policy.size === 0 && policy.default === 'allow') {
      this.onDecision?.(request, ctx, 'allow', '(default)', undefined)
      return undefined
    }
    const named = namedBy(request, (tool) => this.annotations.get(`${ctx.upstream}\u0000${tool}`))
    const input = policyInput(ctx, policyBase(ctx, policy.readsAny('headers')), request.method, named, request.method === 'tools/call' ? argumentsOf(request) : undefined)
    const { effect, rule } = policy.decide(input)
    const name = rule?.name ?? '(default)'
    this.count(name, effect)
    const tool = named.tool?.name
    if (effect === 'allow') {
      this.onDecision?.(request, ctx, effect, name, undefined)
      ctx.log.debug({ rule: name, method: request.method, tool }, 'policy allowed the request')
      return undefined
    }
    // Never the arguments: they may hold anything.
    ctx.log.info({ rule: name, principal: ctx.principal?.id, method: request.method, tool }, 'policy denied the request')
    const reason = rule === undefined ? 'denied by the policy\'s default' : rule.message ?? `denied by policy rule "${rule.name}"`
    this.onDecision?.(request, ctx, effect, name, reason)
    return { action: 'block', reason, data: { rule: rule?.name ?? null, effect } }
  }

  private list (message: JsonRpcMessage, ctx: InterceptorContext): { action: 'modify', message: JsonRpcMessage } | undefined {
    const method = ctx.request?.method
    const spec = method === undefined ? undefined : LISTS[method]
    const result = (message as { result?: Item }).result
    const items = spec === undefined ? undefined : result?.[spec.field]
    if (spec === undefined || result === undefined || !Array.isArray(items)) return undefined
    const policy = this.current
    // Annotations are learned only while some rule reads `tool` (after a reload that starts to,
    // from the next list; calls until then see the spec's defaults).
    if (spec.field === 'tools' && policy.readsAny('tool')) this.learn(ctx.upstream, items as Item[])
    if (policy.size === 0 && policy.default === 'allow') return undefined
    const base = policyBase(ctx, policy.readsAny('headers'))
    // A 2026-07-28 list request names itself in its headers; each entry is judged with the
    // headers its call would have (Mcp-Method, Mcp-Name; no Mcp-Param-*, which are unknown).
    const modern = base.headers['mcp-method'] !== undefined
    // Our own copy when modern: its `mcp-name` is set per entry (each decision is synchronous).
    const headers = modern ? withoutParams(base.headers, spec.call) : base.headers
    const entryBase = modern ? { principal: base.principal, headers, session: base.session, now: base.now } : base
    const kept = (items as unknown[]).filter((entry) => {
      // Not an entry at all: nobody can be shown it.
      if (entry === null || typeof entry !== 'object') return false
      const item = entry as Item
      const named = spec.named(item)
      if (named === undefined) return true
      if (modern) {
        const name = named.tool?.name ?? named.prompt ?? named.resource
        if (name === undefined) delete headers['mcp-name']
        else headers['mcp-name'] = name
      }
      return policy.listable(policyInput(ctx, entryBase, spec.call, named, undefined), spec.unknown)
    })
    // What one viewer is shown is not what another would be: a list said to be public is not, now.
    const scope = result.cacheScope === 'public' ? { cacheScope: 'private' } : {}
    if (kept.length === items.length && result.cacheScope !== 'public') return undefined
    return { action: 'modify', message: { ...message, result: { ...result, [spec.field]: kept, ...scope } } as JsonRpcMessage }
  }

  /** The annotations each tool of an upstream declared, for rules on calls of it. */
  private learn (upstream: string, tools: Item[]): void {
    for (const tool of tools) {
      if (tool === null || typeof tool !== 'object' || typeof tool.name !== 'string') continue
      const declared = tool.annotations as Item | undefined
      this.annotations.set(`${upstream}\u0000${tool.name}`, new PolicyAnnotations(typeof declared === 'object' && declared !== null ? declared : undefined))
    }
  }
}

function withoutParams (headers: Record<string, string>, method: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name in headers) if (!name.startsWith('mcp-param-') && name !== 'mcp-name') out[name] = headers[name] as string
  out['mcp-method'] = method
  return out
}

/**
 * A policy interceptor that throws blocks its message whatever the chain's `onError` says: a
 * policy failure never lets a request (or an unfiltered list) through.
 */
function failClosed<T> (ctx: InterceptorContext, what: string, run: () => T): T | { action: 'block', reason: string } {
  try {
    return run()
  } catch (err) {
    ctx.log.error({ err }, `the policy could not ${what}; blocked`)
    return { action: 'block', reason: `the policy could not ${what}` }
  }
}
