/**
 * A policy: ordered CEL rules `{ name, effect, when, message? }`, compiled and type-checked once,
 * and the decision for one request.
 *
 * Combining (deny overrides): a deny rule whose `when` holds denies; else, for a `tools/call`, an
 * approve rule whose `when` holds makes the call wait for a person's decision; else an allow rule
 * whose `when` holds allows; else the default effect decides, for the operations a policy is about
 * (`tools/call`, `resources/read`, `prompts/get`, `completion/complete`, resource subscriptions).
 * Every other request (initialize, ping, lists, ...) is allowed unless a deny rule holds, so a
 * default of deny does not shut the protocol itself out.
 *
 * A rule that fails while running (a key the request lacks, a type it did not expect) counts as
 * holding when it denies or asks for approval and as not holding when it allows: an error never
 * lets a request through.
 */
import { calls, guardsOf, noteGlobs, variablesRead, type Node } from './analysis.ts'
import { celEnvironment, type PolicyInput } from './cel-env.ts'

/** `approve`: the call waits for a person's decision (tools/call only; lib/approval/). */
export type Effect = 'allow' | 'deny' | 'approve'

export interface PolicyRule {
  name: string
  effect: Effect
  /** A CEL expression over the variables of cel-env.ts, of type bool. */
  when: string
  /** What a denied client is told (default: `denied by policy rule "<name>"`). */
  message?: string
  /** `approve`: globs of the admin names that may decide (default: any admin). */
  approvers?: string[]
  /** `approve`: how long a call waits for a decision. */
  timeoutMs?: number
}

/** Methods an `approve` rule holds: the calls that do something. */
export const APPROVABLE: ReadonlySet<string> = new Set(['tools/call'])

export interface PolicySpec {
  /** What decides an operation no rule holds for. @default 'allow' */
  default?: 'allow' | 'deny'
  rules: PolicyRule[]
}

/** A rule that does not compile: the config is refused with the rule's name and where. */
export class PolicyCompileError extends Error {
  readonly rule: string
  readonly line: number
  readonly column: number
  constructor (rule: string, detail: string, line: number, column: number) {
    super(`policy rule "${rule}": ${detail} (line ${line}, column ${column})`)
    this.name = 'PolicyCompileError'
    this.rule = rule
    this.line = line
    this.column = column
  }
}

interface CompiledRule {
  readonly rule: PolicyRule
  readonly run: (input: PolicyInput) => unknown
  /**
   * Plain checks of the rule's top-level conjuncts that compare a string variable with literals
   * (`tool.name == "x"`, `method in [...]`, `tool.name.glob("x*")`): when one fails the rule
   * cannot hold (in CEL, `false && anything` is false, errors included), and CEL is not run.
   */
  readonly guards: ReadonlyArray<(input: PolicyInput) => boolean>
  /** Variables the expression reads: list filtering leaves out what it cannot know for a list. */
  readonly reads: ReadonlySet<string>
}

export interface RuleResult {
  name: string
  effect: Effect
  /** Whether `when` held (for a rule that failed: what the failure counts as). */
  result: boolean
  error?: string
}

export interface Decision {
  effect: Effect
  /** The rule that decided; undefined when the default (or the protocol's allowance) did. */
  rule: PolicyRule | undefined
  /** Each rule's result, in order, when asked for (the explain command). */
  results?: RuleResult[]
}

/** Methods the default effect applies to; anything else is allowed unless a deny rule holds. */
export const OPERATIONS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'prompts/get', 'completion/complete'])

function position (expression: string, offset: number): { line: number, column: number } {
  const before = expression.slice(0, Math.max(0, offset))
  const lines = before.split('\n')
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 }
}

function compileRule (rule: PolicyRule): CompiledRule {
  const env = celEnvironment()
  let parsed: ReturnType<typeof env.parse>
  try {
    parsed = env.parse(rule.when)
  } catch (err) {
    const { start } = (err as { range?: { start: number } }).range ?? { start: 0 }
    const at = position(rule.when, start)
    throw new PolicyCompileError(rule.name, (err as { summary?: string }).summary ?? (err as Error).message.split('\n')[0] ?? 'does not parse', at.line, at.column)
  }
  const checked = env.check(rule.when)
  if (!checked.valid || checked.type !== 'bool') {
    const error = checked.error as { summary?: string, message?: string, range?: { start: number } } | undefined
    const at = position(rule.when, error?.range?.start ?? 0)
    const detail = error === undefined ? `must be a bool expression, not ${checked.type ?? 'unknown'}` : error.summary ?? error.message?.split('\n')[0] ?? 'does not type-check'
    throw new PolicyCompileError(rule.name, detail, at.line, at.column)
  }
  const ast = parsed.ast as Node
  if (calls(ast, 'matches')) {
    // JavaScript's backtracking RegExp on client-sent strings can take seconds (ReDoS).
    throw new PolicyCompileError(rule.name, 'matches() is not available (its regular expressions backtrack); use glob()', 1, 1)
  }
  noteGlobs(ast)
  return { rule, run: parsed as (input: PolicyInput) => unknown, reads: variablesRead(ast), guards: guardsOf(ast, []) }
}

export class Policy {
  readonly default: 'allow' | 'deny'
  readonly rules: readonly PolicyRule[]
  private readonly compiled: CompiledRule[]
  private readonly read: ReadonlySet<string>
  private readonly denies: CompiledRule[]
  private readonly approves: CompiledRule[]
  private readonly allows: CompiledRule[]

  constructor (spec: PolicySpec) {
    this.default = spec.default ?? 'allow'
    this.rules = spec.rules
    const names = new Set<string>()
    for (const rule of spec.rules) {
      if (names.has(rule.name)) throw new PolicyCompileError(rule.name, 'another rule has this name', 1, 1)
      names.add(rule.name)
    }
    this.compiled = spec.rules.map(compileRule)
    this.read = new Set(this.compiled.flatMap((rule) => [...rule.reads]))
    this.denies = this.compiled.filter((rule) => rule.rule.effect === 'deny')
    this.approves = this.compiled.filter((rule) => rule.rule.effect === 'approve')
    this.allows = this.compiled.filter((rule) => rule.rule.effect === 'allow')
  }

  get size (): number { return this.compiled.length }

  /** The decision for one request. `explain` also gives every rule's result (slower: all run). */
  decide (input: PolicyInput, explain = false): Decision {
    if (explain) return this.explain(input)
    for (const rule of this.denies) if (holds(rule, input, true)) return { effect: 'deny', rule: rule.rule }
    // An approve rule that fails holds, as a deny's does: a person decides rather than nobody.
    if (this.approves.length > 0 && APPROVABLE.has(input.method)) {
      for (const rule of this.approves) if (holds(rule, input, true)) return { effect: 'approve', rule: rule.rule }
    }
    for (const rule of this.allows) if (holds(rule, input, false)) return { effect: 'allow', rule: rule.rule }
    return { effect: OPERATIONS.has(input.method) ? this.default : 'allow', rule: undefined }
  }

  /**
   * Whether a list entry is shown: whether some call of it could be allowed. Rules reading any of
   * `unknown` (a list does not know a call's `arguments`) can go either way, so they neither hide
   * the entry (deny) nor fail to show it (allow).
   */
  listable (input: PolicyInput, unknown: readonly string[]): boolean {
    const split = this.knowable(unknown)
    for (const rule of split.denies) if (holds(rule, input, true)) return false
    // An allow rule that reads what the list cannot know may allow some call: shown.
    if (split.unknownAllow) return true
    for (const rule of split.allows) if (holds(rule, input, false)) return true
    return !OPERATIONS.has(input.method) || this.default === 'allow'
  }

  /** The rules a list can decide with, per set of unknowns (worked out once, not per entry). */
  private readonly splits = new Map<readonly string[], { denies: CompiledRule[], allows: CompiledRule[], unknownAllow: boolean }>()

  private knowable (unknown: readonly string[]): { denies: CompiledRule[], allows: CompiledRule[], unknownAllow: boolean } {
    let split = this.splits.get(unknown)
    if (split === undefined) {
      const known = (rule: CompiledRule): boolean => !unknown.some((name) => rule.reads.has(name))
      // An approve rule lets calls go on (once approved): for a list it counts as an allow.
      const allows = [...this.approves, ...this.allows]
      split = { denies: this.denies.filter(known), allows: allows.filter(known), unknownAllow: allows.some((rule) => !known(rule)) }
      if (this.splits.size < 16) this.splits.set(unknown, split)
    }
    return split
  }

  /** Whether some rule reads `variable` (asked per request: a set, worked out once). */
  readsAny (variable: string): boolean {
    return this.read.has(variable)
  }

  private explain (input: PolicyInput): Decision {
    const results: RuleResult[] = this.compiled.map((rule) => {
      try {
        return { name: rule.rule.name, effect: rule.rule.effect, result: rule.run(input) === true }
      } catch (err) {
        return { name: rule.rule.name, effect: rule.rule.effect, result: rule.rule.effect !== 'allow', error: (err as { summary?: string }).summary ?? (err as Error).message }
      }
    })
    const approvable = APPROVABLE.has(input.method)
    const decided = results.find((r) => r.effect === 'deny' && r.result === true) ??
      (approvable ? results.find((r) => r.effect === 'approve' && r.result === true) : undefined) ??
      results.find((r) => r.effect === 'allow' && r.result === true)
    const rule = decided === undefined ? undefined : this.rules.find((r) => r.name === decided.name)
    const effect = rule?.effect ?? (OPERATIONS.has(input.method) ? this.default : 'allow')
    return { effect, rule, results }
  }
}

function holds (rule: CompiledRule, input: PolicyInput, onError: boolean): boolean {
  for (const guard of rule.guards) if (!guard(input)) return false
  try {
    return rule.run(input) === true
  } catch {
    return onError
  }
}
