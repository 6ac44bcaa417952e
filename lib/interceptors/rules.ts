/**
 * Declarative rules (the preset's config file) compiled to interceptors: block a tool, allow-list
 * tools, rewrite arguments, redact result fields, mock a result, delay. Each rule is checked when
 * compiled, naming the bad field.
 */
import { invalid, isPlainObject } from '../options.ts'
import { globMatcher } from '../glob.ts'
import type { JsonRpcMessage, JsonRpcRequest } from '../jsonrpc.ts'
import { toolMatches, type Interceptor, type InterceptorMatch } from './chain.ts'
import type { Direction } from '../observer.ts'

export type Rule =
  | { block: { tool?: string, method?: string, reason?: string } }
  | { allowTools: string[] }
  | { rewrite: { tool: string, arguments: Record<string, unknown> } }
  | { redact: { tool?: string, method?: string, fields: string[], with?: string } }
  | { mock: { tool?: string, method?: string, result: Record<string, unknown> } }
  | { delay: { ms: number, tool?: string, method?: string, direction?: Direction } }

/**
 * Keys a merge never writes: assigning `__proto__` changes the object's prototype, and
 * `constructor`/`prototype` are how prototype pollution reaches shared objects.
 */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** RFC 7396 JSON merge patch, minus the forbidden keys (skipped wherever they appear in the patch). */
export function mergePatch (target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch
  // Spreading defines own properties (never calls the `__proto__` setter), so the copy is safe.
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (FORBIDDEN_KEYS.has(key)) continue
    // Own values only: an inherited one (`toString`) is not part of the target.
    const current = Object.hasOwn(out, key) ? out[key] : undefined
    if (value === null) delete out[key]
    else out[key] = mergePatch(current, value)
  }
  return out
}

/** The path of the first forbidden key in a config value, for the error naming it. */
function forbiddenKeyIn (value: unknown, path: string): { key: string, at: string } | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = forbiddenKeyIn(value[i], `${path}[${i}]`)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (!isPlainObject(value)) return undefined
  for (const [key, child] of Object.entries(value)) {
    if (FORBIDDEN_KEYS.has(key)) return { key, at: path }
    const found = forbiddenKeyIn(child, `${path}.${key}`)
    if (found !== undefined) return found
  }
  return undefined
}

/** Replaces the values at dot paths (`*` walks every array item or object value). */
export function redactPaths (value: unknown, paths: string[][], replacement: string): unknown {
  const walk = (node: unknown, path: string[]): unknown => {
    if (path.length === 0) return replacement
    const [head, ...rest] = path as [string, ...string[]]
    if (Array.isArray(node)) {
      if (head === '*') return node.map((item) => walk(item, rest))
      const index = Number(head)
      if (!Number.isInteger(index) || index < 0 || index >= node.length) return node
      return node.map((item, i) => i === index ? walk(item, rest) : item)
    }
    if (!isPlainObject(node)) return node
    if (head === '*') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, rest)]))
    if (!(head in node)) return node
    return { ...node, [head]: walk(node[head], rest) }
  }
  return paths.reduce((current, path) => walk(current, path), value)
}

function optionalString (name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, 'must be a non-empty string')
  return value
}

function target (name: string, spec: Record<string, unknown>, required: boolean): InterceptorMatch {
  const tool = optionalString(`${name}.tool`, spec.tool)
  const method = optionalString(`${name}.method`, spec.method)
  if (tool !== undefined && method !== undefined) throw invalid(name, 'give tool or method, not both')
  if (required && tool === undefined && method === undefined) throw invalid(name, 'needs a tool (glob) or a method')
  if (tool !== undefined) return { method: 'tools/call', tool }
  return method === undefined ? {} : { method }
}

function compileRule (rule: unknown, index: number): Interceptor[] {
  const name = `rules[${index}]`
  if (!isPlainObject(rule) || Object.keys(rule).length !== 1) throw invalid(name, 'must be an object with one of block, allowTools, rewrite, redact, mock, delay')
  const [kind, spec] = Object.entries(rule)[0] as [string, unknown]
  if (kind === 'allowTools') {
    if (!Array.isArray(spec) || spec.some((g) => typeof g !== 'string' || g.length === 0)) throw invalid(`${name}.allowTools`, 'must be an array of tool name globs')
    const allowed = globMatcher(spec as string[])
    return [
      {
        name: `${name}:allowTools:list`,
        match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/list' },
        handler: (message, ctx) => {
          const result = (message as { result: { tools?: Array<{ name: string }> } }).result
          if (!Array.isArray(result.tools)) return undefined
          return { action: 'modify', message: { ...message, result: { ...result, tools: result.tools.filter((tool) => toolMatches(allowed, tool.name, ctx)) } } as JsonRpcMessage }
        }
      },
      {
        name: `${name}:allowTools:call`,
        match: { direction: 'client_to_upstream', kind: 'request', method: 'tools/call' },
        handler: (message, ctx) => {
          const tool = (message as JsonRpcRequest).params?.name
          return typeof tool === 'string' && toolMatches(allowed, tool, ctx) ? undefined : { action: 'block', reason: `tool ${JSON.stringify(tool)} is not available` }
        }
      }
    ]
  }
  if (!isPlainObject(spec)) throw invalid(`${name}.${kind}`, 'must be an object')
  switch (kind) {
    case 'block': {
      const reason = optionalString(`${name}.block.reason`, spec.reason)
      return [{ name: `${name}:block`, match: { direction: 'client_to_upstream', kind: 'request', ...target(`${name}.block`, spec, true) }, handler: () => ({ action: 'block', reason: reason ?? 'blocked by gateway policy' }) }]
    }
    case 'rewrite': {
      const tool = optionalString(`${name}.rewrite.tool`, spec.tool)
      if (tool === undefined) throw invalid(`${name}.rewrite.tool`, 'is required')
      if (!isPlainObject(spec.arguments)) throw invalid(`${name}.rewrite.arguments`, 'must be a JSON merge patch object')
      const forbidden = forbiddenKeyIn(spec.arguments, 'arguments')
      if (forbidden !== undefined) throw invalid(`${name}.rewrite.arguments`, `must not hold a "${forbidden.key}" key (at ${forbidden.at})`)
      const patch = spec.arguments
      return [{
        name: `${name}:rewrite`,
        match: { direction: 'client_to_upstream', kind: 'request', method: 'tools/call', tool },
        handler: (message) => {
          const request = message as JsonRpcRequest
          const params = request.params ?? {}
          return { action: 'modify', message: { ...request, params: { ...params, arguments: mergePatch(params.arguments ?? {}, patch) } } as JsonRpcMessage }
        }
      }]
    }
    case 'redact': {
      if (!Array.isArray(spec.fields) || spec.fields.length === 0 || spec.fields.some((f) => typeof f !== 'string' || f.length === 0)) throw invalid(`${name}.redact.fields`, 'must be a non-empty array of dot paths into the result')
      const paths = (spec.fields as string[]).map((f) => f.split('.'))
      const replacement = optionalString(`${name}.redact.with`, spec.with) ?? '[redacted]'
      return [{
        name: `${name}:redact`,
        match: { direction: 'upstream_to_client', kind: 'response', ...target(`${name}.redact`, spec, false) },
        handler: (message) => {
          const response = message as { result: unknown }
          return { action: 'modify', message: { ...message, result: redactPaths(response.result, paths, replacement) } as JsonRpcMessage }
        }
      }]
    }
    case 'mock': {
      if (!isPlainObject(spec.result)) throw invalid(`${name}.mock.result`, 'must be an object (the JSON-RPC result)')
      const result = spec.result
      return [{ name: `${name}:mock`, match: { direction: 'client_to_upstream', kind: 'request', ...target(`${name}.mock`, spec, true) }, handler: () => ({ action: 'respond', result }) }]
    }
    case 'delay': {
      const ms = spec.ms
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 600_000) throw invalid(`${name}.delay.ms`, 'must be an integer from 0 to 600000')
      const direction = spec.direction
      if (direction !== undefined && direction !== 'client_to_upstream' && direction !== 'upstream_to_client') throw invalid(`${name}.delay.direction`, 'must be client_to_upstream or upstream_to_client')
      return [{ name: `${name}:delay`, match: { direction: direction ?? 'client_to_upstream', ...target(`${name}.delay`, spec, false) }, handler: () => ({ action: 'delay', ms }) }]
    }
    default:
      throw invalid(name, `unknown rule "${kind}" (block, allowTools, rewrite, redact, mock, delay)`)
  }
}

/** Compiles config-file rules, in order, to interceptors. */
export function compileRules (rules: unknown): Interceptor[] {
  if (!Array.isArray(rules)) throw invalid('rules', 'must be an array')
  return rules.flatMap(compileRule)
}
