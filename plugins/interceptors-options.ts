/**
 * The interceptors plugin's options: one schema gives their type, their defaults, the check that
 * runs once at register and their part of the config file's JSON Schema. Rules are compiled (and
 * checked, naming the rule: `rules[0].block`) by `compileRules`; the schema then refuses what that
 * leaves unsaid, such as a misspelt key inside a rule.
 */
import { CHAIN_DEFAULTS, type Interceptor } from '../lib/interceptors/chain.ts'
import { compileRules, type Rule } from '../lib/interceptors/rules.ts'
import { codeOnly, codeValue, int, isPlainObject, nonEmptyString, parseOptions, pluginSchema, reportAs, z, type SectionInput } from '../lib/options.ts'

const glob = nonEmptyString()
const target = { tool: glob.optional().meta({ description: 'Tool name glob (tools/call).' }), method: glob.optional().meta({ description: 'JSON-RPC method.' }) }
const anyObject = z.record(z.string(), z.unknown())

/** One declarative rule: exactly one of block, allowTools, rewrite, redact, mock, delay. */
const ruleSchema = z.union([
  z.strictObject({ block: z.strictObject({ ...target, reason: nonEmptyString().optional() }).meta({ description: 'Refuse calls of a tool (or a method) before they reach the upstream.' }) }),
  z.strictObject({ allowTools: z.array(glob).meta({ description: 'Only these tools (globs) are listed and callable.' }) }),
  z.strictObject({ rewrite: z.strictObject({ tool: glob, arguments: anyObject.meta({ description: 'A JSON merge patch applied to the call\'s arguments.' }) }) }),
  z.strictObject({ redact: z.strictObject({ ...target, fields: z.array(glob).min(1).meta({ description: 'Dot paths into the result (`*`: every item).' }), with: nonEmptyString().optional() }) }),
  z.strictObject({ mock: z.strictObject({ ...target, result: anyObject.meta({ description: 'The JSON-RPC result answered instead of the upstream.' }) }) }),
  z.strictObject({
    delay: z.strictObject({ ms: int(0, 600_000), ...target, direction: z.enum(['client_to_upstream', 'upstream_to_client']).optional() })
  })
], { error: 'must be an object with one of block, allowTools, rewrite, redact, mock, delay' })

export const interceptorsShape = {
  /** Declarative rules, run first, in order (see README). */
  rules: z.array(ruleSchema).optional(),
  /** Interceptors run after the rules, in order. Code only. */
  interceptors: codeOnly(reportAs(z.array(codeValue<Interceptor>((value) => isPlainObject(value) ? undefined : 'must be an interceptor')), 'must be an array of interceptors')).optional(),
  /**
   * A handler that throws or times out: `closed` blocks its message, `open` lets it through.
   * @default 'closed'
   */
  onError: z.enum(['closed', 'open']).default(CHAIN_DEFAULTS.onError).meta({ description: 'A handler that throws or times out: closed blocks its message, open lets it through.' }),
  /**
   * Longest a handler may take.
   * @default 5000
   */
  timeoutMs: int(1).default(CHAIN_DEFAULTS.timeoutMs).meta({ description: 'Longest an interceptor may take.' })
}

export const interceptorsSchema = pluginSchema(interceptorsShape)

export type McpInterceptorsOptions = SectionInput<typeof interceptorsShape>

/** The schema's rules are the lib's `Rule`s (a compile-time check: a rule the schema takes compiles). */
export type CheckedRule = z.output<typeof ruleSchema> extends Rule ? z.output<typeof ruleSchema> : never

export interface CheckedInterceptorsOptions {
  onError: 'closed' | 'open'
  timeoutMs: number
  /** The compiled rules, then the given interceptors. */
  interceptors: Interceptor[]
}

export function checkInterceptorsOptions (options: McpInterceptorsOptions): CheckedInterceptorsOptions {
  const rules = isPlainObject(options) && options.rules !== undefined ? compileRules(options.rules) : []
  const { onError, timeoutMs, interceptors = [] } = parseOptions(interceptorsSchema, 'interceptors', options)
  return { onError, timeoutMs, interceptors: [...rules, ...interceptors] }
}
