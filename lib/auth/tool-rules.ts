/**
 * Per-tool authorization: rules granting tools (by name glob) to principals (by id glob) or to
 * holders of scopes, optionally per upstream. A principal may see and call a tool when some rule
 * grants it; `tools/list` shows only those, and a call to any other tool is blocked before it
 * reaches the upstream. Built on the interceptor chain, so it applies whatever the upstream kind.
 */
import { toolMatches, type Interceptor, type InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcMessage, JsonRpcRequest } from '../jsonrpc.ts'
import { globMatcher, type GlobMatcher } from '../glob.ts'
import { invalid, isPlainObject } from '../options.ts'
import type { Principal } from './principal.ts'

export interface ToolRule {
  /** Principal id globs (`*` any run). Absent: any principal. */
  principals?: string[]
  /** The rule applies when the principal holds any of these scopes. Absent: no scope needed. */
  scopes?: string[]
  /** Upstream names the rule covers. Absent: every upstream. */
  upstreams?: string[]
  /** Tool name globs granted (behind a virtual server also `<member upstream>/<its own name>`). */
  tools: string[]
}

interface CompiledRule {
  principals: GlobMatcher | undefined
  scopes: string[] | undefined
  upstreams: Set<string> | undefined
  tools: GlobMatcher
}

function list (name: string, value: unknown, required: boolean): string[] | undefined {
  if (value === undefined && !required) return undefined
  if (!Array.isArray(value) || value.length === 0 || value.some((item) => typeof item !== 'string' || item.length === 0)) {
    throw invalid(name, 'must be a non-empty array of strings')
  }
  return value as string[]
}

export function checkToolRules (rules: unknown): CompiledRule[] {
  if (rules === undefined) return []
  if (!Array.isArray(rules)) throw invalid('auth.tools', 'must be an array of rules')
  return rules.map((rule, index) => {
    const at = `auth.tools[${index}]`
    if (!isPlainObject(rule)) throw invalid(at, 'must be { principals?, scopes?, upstreams?, tools }')
    const principals = list(`${at}.principals`, rule.principals, false)
    const upstreams = list(`${at}.upstreams`, rule.upstreams, false)
    return {
      principals: principals === undefined ? undefined : globMatcher(principals),
      scopes: list(`${at}.scopes`, rule.scopes, false),
      upstreams: upstreams === undefined ? undefined : new Set(upstreams),
      tools: globMatcher(list(`${at}.tools`, rule.tools, true) as string[])
    }
  })
}

/**
 * Behind a virtual server a rule's `upstreams` may name the virtual server or the tool's member,
 * and its tool globs may match the exposed name or `<member>/<own name>` (toolMatches).
 */
function allowed (rules: CompiledRule[], principal: Principal | undefined, ctx: Pick<InterceptorContext, 'upstream' | 'memberOf'>, tool: string): boolean {
  if (principal === undefined) return false
  const member = ctx.memberOf?.('tools', tool)
  return rules.some((rule) =>
    (rule.principals === undefined || rule.principals.test(principal.id)) &&
    (rule.scopes === undefined || rule.scopes.some((scope) => principal.scopes.includes(scope))) &&
    (rule.upstreams === undefined || rule.upstreams.has(ctx.upstream) || (member !== undefined && rule.upstreams.has(member.upstream))) &&
    toolMatches(rule.tools, tool, ctx))
}

export function toolRuleInterceptors (rules: CompiledRule[]): Interceptor[] {
  return [
    {
      name: 'auth:tools:list',
      match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/list' },
      handler: (message, ctx) => {
        const result = (message as { result: { tools?: Array<{ name: string }>, cacheScope?: unknown } }).result
        if (!Array.isArray(result.tools)) return undefined
        const tools = result.tools.filter((tool) => allowed(rules, ctx.principal, ctx, tool.name))
        // What this principal sees is not what another would: a list said to be public is not, now.
        const scope = result.cacheScope === 'public' ? { cacheScope: 'private' } : {}
        if (tools.length === result.tools.length && result.cacheScope !== 'public') return undefined
        return { action: 'modify', message: { ...message, result: { ...result, tools, ...scope } } as JsonRpcMessage }
      }
    },
    {
      name: 'auth:tools:call',
      match: { direction: 'client_to_upstream', kind: 'request', method: 'tools/call' },
      handler: (message, ctx) => {
        const tool = (message as JsonRpcRequest).params?.name
        if (typeof tool === 'string' && allowed(rules, ctx.principal, ctx, tool)) return undefined
        return { action: 'block', reason: `tool ${JSON.stringify(tool)} is not available to you` }
      }
    }
  ]
}
