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
import type { Effect, Policy, PolicyRule } from './policy.ts'
import type { Approvals } from '../approval/approvals.ts'
import type { ApprovalDecision } from '../approval/store.ts'

type Item = Record<string, unknown>

type Blocked = { action: 'block', reason: string, data: Record<string, unknown> }

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

/** How long a call waits for approval when its rule does not say. */
export const APPROVAL_TIMEOUT_MS = 300_000
/** The request interceptor's own limit: past the longest approval a rule can ask for. */
const HOLD_LIMIT_MS = 86_400_000 + 60_000

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
  /** Told how each held call's approval ended (the audit log). */
  onApproval: ((request: JsonRpcRequest, decision: ApprovalDecision) => void) | undefined
  /** Where `approve` rules hold calls; without, such calls are refused (nobody could approve). */
  approvals: Approvals | undefined
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
        handler: (message, ctx) => failClosed(ctx, 'decide on the request', () => this.request(message as JsonRpcRequest, ctx)),
        // Decisions are synchronous (no timer); only a call held for approval waits, on its own timer.
        timeoutMs: HOLD_LIMIT_MS
      },
      {
        // A session's cancellation of a call held for approval ends the wait (it goes on upstream
        // too, harmlessly: the upstream never had the request).
        name: 'policy:cancellations',
        match: { direction: 'client_to_upstream', kind: 'notification', method: 'notifications/cancelled' },
        handler: (message, ctx) => { this.approvals?.cancelled(ctx.session?.id, (message as { params?: { requestId?: unknown } }).params?.requestId) }
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
    if (counts === undefined) this.decisions.set(rule, { allow: 0, deny: 0, approve: 0, [effect]: 1 })
    else counts[effect]++
  }

  private request (request: JsonRpcRequest, ctx: InterceptorContext): Blocked | undefined | Promise<Blocked | undefined> {
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
    if (effect === 'approve') {
      this.onDecision?.(request, ctx, effect, name, undefined)
      return this.hold(request, ctx, rule as PolicyRule, tool ?? '')
    }
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

  /** A call an approve rule holds: sent on once approved, refused when denied or not decided in time. */
  private async hold (request: JsonRpcRequest, ctx: InterceptorContext, rule: PolicyRule, tool: string): Promise<Blocked | undefined> {
    const data = { rule: rule.name, effect: 'approve' }
    const approvals = this.approvals
    if (approvals === undefined) return { action: 'block', reason: 'this call needs approval and nobody can approve it here (the admin API is off)', data: { ...data, approval: null } }
    const timeoutMs = rule.timeoutMs ?? APPROVAL_TIMEOUT_MS
    let decision: ApprovalDecision
    try {
      decision = await approvals.hold({
        rule: rule.name,
        approvers: rule.approvers ?? null,
        principal: ctx.principal?.id ?? null,
        session: ctx.session?.id ?? null,
        upstream: ctx.upstream,
        member: ctx.memberOf?.('tools', tool) ?? null,
        tool,
        requestId: request.id
      }, argumentsOf(request) ?? {}, timeoutMs, ctx.signal)
    } catch (err) {
      ctx.log.error({ err, rule: rule.name }, 'the call could not be held for approval; refused')
      return { action: 'block', reason: 'this call needs approval and could not be held for it', data: { ...data, approval: null } }
    }
    this.onApproval?.(request, decision)
    if (decision.outcome === 'approved') return undefined
    const reason = decision.outcome === 'denied'
      ? `${decision.by ?? 'an approver'} denied the call${decision.reason === null ? '' : `: ${decision.reason}`}`
      : decision.outcome === 'timeout' ? `nobody approved the call within ${timeoutMs / 1000} s` : 'the call was cancelled while waiting for approval'
    return { action: 'block', reason, data: { ...data, approval: decision.outcome, approver: decision.by } }
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
