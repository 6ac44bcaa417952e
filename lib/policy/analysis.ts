/**
 * What a compiled rule's syntax tree says before it ever runs: the variables it reads (a list
 * entry cannot know a call's `arguments` or `Mcp-Param-*` headers), the functions it calls, its
 * literal glob patterns (compiled once), and plain checks of its top-level conjuncts that let CEL
 * be skipped when one fails (in CEL, `false && anything` is false, errors included).
 */
import { globMatcher, type GlobMatcher } from '../glob.ts'
import type { PolicyInput } from './cel-env.ts'

export type Node = { op?: unknown, args?: unknown }

/** Read by a rule that may look at an `Mcp-Param-*` header (see Policy.listable). */
export const MCP_PARAM = 'mcp-param'

/** Every node of the tree, with its parent; iterative (no depth limit: cel-js bounds the size). */
function * nodes (root: Node): Generator<[Node, Node | undefined]> {
  const stack: Array<[unknown, Node | undefined]> = [[root, undefined]]
  while (stack.length > 0) {
    const [value, parent] = stack.pop() as [unknown, Node | undefined]
    if (value === null || typeof value !== 'object') continue
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, parent])
      continue
    }
    const node = value as Node
    if (node.op !== undefined) yield [node, parent]
    if (node.args !== null && typeof node.args === 'object') stack.push([node.args, node.op === undefined ? parent : node])
  }
}

const literal = (node: Node | undefined): string | undefined => node?.op === 'value' && typeof node.args === 'string' ? node.args : undefined

/** The key a `headers` access names, when it is a literal (`headers["x"]`, `headers.x`, `has(headers.x)`). */
function headerKey (parent: Node | undefined): string | undefined {
  if (parent === undefined || !Array.isArray(parent.args)) return undefined
  const [, key] = parent.args as [unknown, unknown]
  if (parent.op === '.' || parent.op === '.?') return typeof key === 'string' ? key : undefined
  if (parent.op === '[]' || parent.op === '[?]') return literal(key as Node)
  return undefined
}

/**
 * The variables an expression names (a comprehension's own variable named like one counts too:
 * the safe side), and `MCP_PARAM` when it may read an `Mcp-Param-*` header: by a literal key that
 * starts so, or through `headers` as a whole (`headers.exists(...)`, a computed key).
 */
export function variablesRead (root: Node): Set<string> {
  const reads = new Set<string>()
  for (const [node, parent] of nodes(root)) {
    if (node.op !== 'id' || typeof node.args !== 'string') continue
    reads.add(node.args)
    if (node.args !== 'headers') continue
    const key = headerKey(parent)
    if (key === undefined || key.toLowerCase().startsWith('mcp-param-')) reads.add(MCP_PARAM)
  }
  return reads
}

/** Whether the expression calls `name` (as a function or a method). */
export function calls (root: Node, name: string): boolean {
  for (const [node] of nodes(root)) {
    if ((node.op === 'call' || node.op === 'rcall') && Array.isArray(node.args) && node.args[0] === name) return true
  }
  return false
}

/** Literal glob patterns, compiled once when a rule compiles; patterns computed at run time are not kept. */
const literalGlobs = new Map<string, GlobMatcher>()

export function noteGlobs (root: Node): void {
  for (const [node] of nodes(root)) {
    if (node.op !== 'rcall' || !Array.isArray(node.args) || node.args[0] !== 'glob') continue
    const pattern = Array.isArray(node.args[2]) ? literal(node.args[2][0] as Node) : undefined
    if (pattern !== undefined && !literalGlobs.has(pattern)) literalGlobs.set(pattern, globMatcher([pattern]))
  }
}

/** `string.glob(pattern)`: the gateway's linear-time globs (lib/glob.ts). */
export function glob (text: string, pattern: string): boolean {
  return (literalGlobs.get(pattern) ?? globMatcher([pattern])).test(text)
}

/** String fields every input has (never missing, never another type). */
const STRING_FIELDS: Record<string, ReadonlySet<string>> = {
  tool: new Set(['name', 'ownName']),
  upstream: new Set(['name', 'kind', 'era', 'member']),
  prompt: new Set(['name']),
  resource: new Set(['uri']),
  principal: new Set(['id', 'kind']),
  session: new Set(['id', 'era'])
}

/** A reader of `method` or `<variable>.<string field>`, if the node is one. */
function stringPath (node: Node): ((input: PolicyInput) => string) | undefined {
  if (node.op === 'id' && node.args === 'method') return (input) => input.method
  if (node.op !== '.' || !Array.isArray(node.args)) return undefined
  const [target, field] = node.args as [Node, unknown]
  if (target.op !== 'id' || typeof target.args !== 'string' || typeof field !== 'string' || STRING_FIELDS[target.args]?.has(field) !== true) return undefined
  const variable = target.args as keyof PolicyInput
  return (input) => (input[variable] as unknown as Record<string, string>)[field] as string
}

type Guard = (input: PolicyInput) => boolean

function guardOf (node: Node): Guard | undefined {
  const args = Array.isArray(node.args) ? node.args as Node[] : []
  if (node.op === '==' && args.length === 2) {
    const [left, right] = args as [Node, Node]
    const path = stringPath(left) ?? stringPath(right)
    const value = literal(right) ?? literal(left)
    if (path !== undefined && value !== undefined) return (input) => path(input) === value
  }
  if (node.op === 'in' && args.length === 2) {
    const [left, list] = args as [Node, Node]
    const path = stringPath(left)
    const values = list.op === 'list' && Array.isArray(list.args) ? (list.args as Node[]).map(literal) : undefined
    if (path !== undefined && values !== undefined && values.every((value) => value !== undefined)) {
      const set = new Set(values)
      return (input) => set.has(path(input))
    }
  }
  // `"scope" in principal.scopes`.
  if (node.op === 'in' && args.length === 2) {
    const [value, list] = args as [Node, Node]
    const scope = literal(value)
    const target = Array.isArray(list.args) ? list.args as [Node, unknown] : undefined
    if (scope !== undefined && list.op === '.' && target?.[0]?.op === 'id' && target[0].args === 'principal' && target[1] === 'scopes') {
      return (input) => input.principal.scopes.includes(scope)
    }
  }
  // `has(arguments.x)` / `has(headers.x)`: whether the map has the key.
  if (node.op === 'call' && args.length === 2 && (args[0] as unknown) === 'has' && Array.isArray(args[1]) && args[1].length === 1) {
    const field = args[1][0] as Node
    const [target, key] = Array.isArray(field.args) ? field.args as [Node, unknown] : []
    if (field.op === '.' && target?.op === 'id' && (target.args === 'arguments' || target.args === 'headers') && typeof key === 'string') {
      const variable = target.args
      return (input) => Object.hasOwn(input[variable], key)
    }
  }
  if (node.op === 'rcall' && args.length === 3 && (args[0] as unknown) === 'glob') {
    const path = stringPath(args[1] as Node)
    const pattern = Array.isArray(args[2]) && args[2].length === 1 ? literal(args[2][0] as Node) : undefined
    if (path !== undefined && pattern !== undefined) return (input) => glob(path(input), pattern)
  }
  return undefined
}

/** The plain checks of a rule's top-level `&&` conjuncts. */
export function guardsOf (node: Node, into: Guard[]): Guard[] {
  if (node.op === '&&' && Array.isArray(node.args)) {
    for (const part of node.args as Node[]) guardsOf(part, into)
    return into
  }
  const guard = guardOf(node)
  if (guard !== undefined) into.push(guard)
  return into
}
