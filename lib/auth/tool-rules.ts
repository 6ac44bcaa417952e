/**
 * Per-tool authorization: rules granting tools (by name glob) to principals (by id glob) or to
 * holders of scopes, optionally per upstream. A principal may see and call a tool when some rule
 * grants it; `tools/list` shows only those, and a call to any other tool is blocked before it
 * reaches the upstream. A shorthand: the rules compile to one CEL deny rule of the policy engine
 * (lib/policy), which runs on the interceptor chain, whatever the upstream kind.
 */
import type { Interceptor } from '../interceptors/chain.ts'
import { invalid, isPlainObject } from '../options.ts'
import { PolicyGate } from '../policy/gate.ts'
import { Policy, type PolicyRule } from '../policy/policy.ts'

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

function list (name: string, value: unknown, required: boolean): string[] | undefined {
  if (value === undefined && !required) return undefined
  if (!Array.isArray(value) || value.length === 0 || value.some((item) => typeof item !== 'string' || item.length === 0)) {
    throw invalid(name, 'must be a non-empty array of strings')
  }
  return value as string[]
}

export function checkToolRules (rules: unknown): ToolRule[] {
  if (rules === undefined) return []
  if (!Array.isArray(rules)) throw invalid('auth.tools', 'must be an array of rules')
  return rules.map((rule, index) => {
    const at = `auth.tools[${index}]`
    if (!isPlainObject(rule)) throw invalid(at, 'must be { principals?, scopes?, upstreams?, tools }')
    const checked: ToolRule = { tools: list(`${at}.tools`, rule.tools, true) as string[] }
    const principals = list(`${at}.principals`, rule.principals, false)
    const scopes = list(`${at}.scopes`, rule.scopes, false)
    const upstreams = list(`${at}.upstreams`, rule.upstreams, false)
    if (principals !== undefined) checked.principals = principals
    if (scopes !== undefined) checked.scopes = scopes
    if (upstreams !== undefined) checked.upstreams = upstreams
    return checked
  })
}

/** A CEL string literal (JSON's escapes are CEL's). */
const literal = (value: string): string => JSON.stringify(value)
const anyOf = (parts: string[]): string => `(${parts.join(' || ')})`

/**
 * One grant as CEL. Behind a virtual server, `upstreams` may name the virtual server or the
 * tool's member, and tool globs may match the exposed name or `<member>/<its own name>`.
 */
function grant (rule: ToolRule): string {
  const parts = ['principal.id != ""']
  if (rule.principals !== undefined) parts.push(anyOf(rule.principals.map((glob) => `principal.id.glob(${literal(glob)})`)))
  if (rule.scopes !== undefined) parts.push(`principal.scopes.exists(s, s in [${rule.scopes.map(literal).join(', ')}])`)
  if (rule.upstreams !== undefined) {
    const names = `[${rule.upstreams.map(literal).join(', ')}]`
    parts.push(`(upstream.name in ${names} || upstream.member in ${names})`)
  }
  parts.push(anyOf(rule.tools.map((glob) => `tool.name.glob(${literal(glob)}) || (upstream.member != "" && (upstream.member + "/" + tool.ownName).glob(${literal(glob)}))`)))
  return parts.join(' && ')
}

/** The rules as the policy rule they are shorthand for: a call no rule grants is denied. */
export function toolRulesAsPolicy (rules: ToolRule[]): PolicyRule {
  return {
    name: 'auth.tools',
    effect: 'deny',
    // A call that names no tool is granted by no rule.
    when: `method == "tools/call" && (tool.name == "" || !${anyOf(rules.map((rule) => `(${grant(rule)})`))})`,
    message: 'this tool is not available to you'
  }
}

export function toolRuleInterceptors (rules: ToolRule[]): Interceptor[] {
  if (rules.length === 0) return []
  return new PolicyGate(new Policy({ rules: [toolRulesAsPolicy(rules)] })).interceptors()
    .map((interceptor) => ({ ...interceptor, name: interceptor.name.replace('policy:', 'auth:tools:') }))
}
