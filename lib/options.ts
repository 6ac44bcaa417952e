/**
 * Options, from one definition each: a zod schema per plugin gives the option type users write
 * (`z.input`), the defaults, the check run once at register (unknown keys and wrong types
 * refused) and the config file's JSON Schema (examples/gateway/schema.ts). This module holds the
 * building blocks and the one place where a schema's complaint becomes the gateway's
 * `INVALID_OPTION` error, naming the option's path as users know it. Nothing here runs per request.
 */
import { z } from 'zod'
import { GatewayErrors } from './errors.ts'

export { z }

export function invalid (name: string, reason: string): Error {
  return new GatewayErrors.INVALID_OPTION(name, reason)
}

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function optionalInteger (name: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(name, `must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Edit distance between two short strings (option names), for "did you mean". */
function distance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost)
    }
    previous = current
  }
  return previous[b.length] as number
}

/**
 * What Fastify's `register()` itself takes and leaves in a plugin's options object
 * (`app.register(plugin, { prefix, logLevel, ... })`): a plugin's top level accepts them.
 */
export const REGISTER_OPTION_KEYS = ['prefix', 'logLevel', 'logSerializers'] as const

/**
 * Why `key` is refused among `known`: a misspelt option (`requestTimout`) would otherwise fall
 * back to its default without a word, so the error names the nearest known one, when it is a
 * plausible near miss, and lists them all.
 */
function unknownKeyReason (key: string, known: readonly string[]): string {
  let nearest: string | undefined
  let best = Infinity
  for (const candidate of known) {
    const d = distance(key.slice(0, 64), candidate)
    if (d < best) {
      best = d
      nearest = candidate
    }
  }
  // Only a plausible near miss is suggested: past half the name, it is another word.
  const hint = nearest !== undefined && best <= Math.max(2, Math.floor(nearest.length / 2)) ? ` (did you mean "${nearest}"?)` : ''
  return `is not a known option${hint}; known: ${known.join(', ')}`
}

// ---- Building blocks of the option schemas -------------------------------------------------

/** Schemas a config file cannot hold (functions, clients, stores): left out of its JSON Schema. */
export const codeOnlySchemas = new WeakSet<z.ZodType>()

export function codeOnly<T extends z.ZodType> (schema: T): T {
  codeOnlySchemas.add(schema)
  return schema
}

/** A value that must pass `test`, for what JSON cannot say (a function, an object with methods). */
export function codeValue<T> (test: (value: unknown) => string | undefined): z.ZodCustom<T, T> {
  // Both: the JSON Schema generator also visits the schema a check was added to.
  const base = codeOnly(z.custom<T>())
  return codeOnly(base.check((ctx) => {
    const reason = test(ctx.value)
    if (reason !== undefined) ctx.issues.push({ code: 'custom', message: reason, input: ctx.value })
  }))
}

/**
 * Schemas whose every complaint is reported as one, at their own path: a list or a pair whose
 * users know one message for it (`must be an array of strings`), not one per item.
 */
const wholeMessages = new WeakMap<z.ZodType, string>()

export function reportAs<T extends z.ZodType> (schema: T, message: string): T {
  wholeMessages.set(schema, message)
  return schema
}

export function int (min: number, max?: number): z.ZodNumber {
  const message = (iss: { input?: unknown }): string => iss.input === undefined ? 'is required' : `must be an integer >= ${min}, got ${JSON.stringify(iss.input)}`
  const schema = z.number({ error: message }).int({ error: message }).min(min, { error: message })
  return max === undefined ? schema : schema.max(max, { error: `must be at most ${max}` })
}

/** `message`: what every refusal says (else "is required" when absent, "must be a non-empty string"). */
export function nonEmptyString (message?: string): z.ZodString {
  const reason = (iss: { input?: unknown }): string => message ?? (iss.input === undefined ? 'is required' : 'must be a non-empty string')
  return z.string({ error: reason }).min(1, { error: reason })
}

/** A path on this server (`/mcp`, `/ws`). */
export function routePath (): z.ZodString {
  return nonEmptyString().regex(/^\//, { error: 'must start with "/"' })
}

export function stringList (message = 'must be an array of strings'): z.ZodArray<z.ZodString> {
  return reportAs(z.array(z.string()), message)
}

/** An http(s) URL string, as given. */
export function httpUrlString (): z.ZodString {
  return z.string({ error: 'must be an http(s) URL string' }).check((ctx) => {
    let url: URL
    try {
      url = new URL(ctx.value)
    } catch {
      ctx.issues.push({ code: 'custom', message: `is not a URL: ${JSON.stringify(ctx.value)}`, input: ctx.value })
      return
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.issues.push({ code: 'custom', message: `must use http or https, got ${url.protocol}`, input: ctx.value })
  }).meta({ format: 'uri', pattern: '^https?://' })
}

/** An http(s) URL, normalised (`new URL().href`). */
export function httpUrl (): z.ZodPipe<z.ZodString, z.ZodTransform<string, string>> {
  return httpUrlString().transform((value) => new URL(value).href)
}

/** Header values sent upstream: strings without CR or LF, names lower-cased. */
export function headerRecord (): z.ZodPipe<z.ZodRecord<z.ZodString, z.ZodString>, z.ZodTransform<Record<string, string>, Record<string, string>>> {
  const value = z.string({ error: 'must be a string' }).regex(/^[^\r\n]*$/, { error: 'must not contain CR or LF' })
  return z.record(z.string(), value, { error: 'must be an object of header names to string values' })
    .transform((headers) => Object.fromEntries(Object.entries(headers).map(([name, item]) => [name.toLowerCase(), item])))
}

/** Fastify's own register options, accepted at a plugin's top level (not in a config file). */
const REGISTER_SHAPE = Object.fromEntries(REGISTER_OPTION_KEYS.map((key) => [key, codeOnly(z.unknown().optional())])) as
  Record<typeof REGISTER_OPTION_KEYS[number], z.ZodOptional<z.ZodUnknown>>

/** What a user writes for a section: every option with a default or none is optional. */
export type SectionInput<S extends z.core.$ZodLooseShape> = z.input<z.ZodObject<S, z.core.$strict>>

/** A plugin's options as the umbrella plugin and a config file hold them (a section). */
export function section<S extends z.core.$ZodLooseShape> (shape: S): z.ZodObject<S, z.core.$strict> {
  return z.strictObject(shape, { error: 'must be an object' })
}

/** A plugin's options as its `register()` gets them: its section, and Fastify's own keys. */
export function pluginSchema<S extends z.core.$ZodLooseShape> (shape: S): z.ZodObject<typeof REGISTER_SHAPE & S, z.core.$strict> {
  return z.strictObject({ ...REGISTER_SHAPE, ...shape }, { error: 'must be an object' })
}

// ---- From a schema's complaint to INVALID_OPTION ---------------------------------------------

type Issue = z.core.$ZodIssue
type Segment = PropertyKey

/** The default wording of the common complaints (a schema's own `error` takes precedence). */
function defaultMessage (iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'invalid_union')) return 'is required'
  switch (iss.code) {
    case 'invalid_type':
      return `must be ${/^[aeiou]/.test(iss.expected) ? 'an' : 'a'} ${iss.expected}`
    case 'invalid_value': {
      const values = iss.values.map((value) => JSON.stringify(value))
      return `must be ${values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values.at(-1) as string}` : values[0] as string}`
    }
    case 'invalid_union': {
      const options = (iss as { options?: unknown[] }).options
      return options === undefined ? undefined : `must be one of ${options.filter((o) => typeof o === 'string').join(', ')}`
    }
  }
  return undefined
}

type Def = { type: string, shape?: Record<string, z.ZodType>, element?: z.ZodType, valueType?: z.ZodType, options?: z.ZodType[], discriminator?: string, innerType?: z.ZodType, in?: z.ZodType, error?: unknown }
const defOf = (schema: z.ZodType): Def => schema.def as Def

/** Through the wrappers (optional, default, a transform's input) to the schema that checks. */
function unwrap (schema: z.ZodType): z.ZodType {
  let current = schema
  for (;;) {
    const def = defOf(current)
    if (def.innerType !== undefined) current = def.innerType
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in
    else return current
  }
}

/** A failure of the option's very type (an object given a string): the value is not of this option. */
function otherType (option: z.ZodType, issue: Issue): boolean {
  return issue.path.length === 0 && (issue.code === 'invalid_type' || defOf(unwrap(option)).type === 'custom')
}

/**
 * Of a union's options and the complaints of each, the one the value is meant for: of those it is
 * of the type of, the one it went furthest into; none when several fail at the value itself.
 */
function meantFor (options: readonly z.ZodType[], complaints: ReadonlyArray<readonly Issue[]>): { option: z.ZodType, head: Issue | undefined } | undefined {
  type Candidate = { option: z.ZodType, head: Issue | undefined, depth: number }
  const candidates = complaints.flatMap((issues, index): Candidate[] => {
    const option = options[index]
    if (option === undefined) return []
    if (issues.length === 0) return [{ option, head: undefined, depth: Infinity }]
    const head = first(issues)
    return otherType(option, head) ? [] : [{ option, head, depth: head.path.length }]
  })
  const deepest = Math.max(...candidates.map((c) => c.depth))
  const chosen = candidates.filter((c) => c.depth === deepest)
  return chosen.length === 1 || deepest > 0 ? chosen[0] : undefined
}

/** The option of a union that `value` is meant for: its discriminator's, else as `meantFor` says. */
function resolve (schema: z.ZodType, value: unknown): z.ZodType {
  let node = unwrap(schema)
  for (let def = defOf(node); def.type === 'union'; def = defOf(node)) {
    const options = def.options ?? []
    const tag = def.discriminator
    const fit = tag !== undefined
      ? options.find((o) => defOf(unwrap(o)).shape?.[tag]?.safeParse(isPlainObject(value) ? value[tag] : undefined).success === true)
      : meantFor(options, options.map((o) => o.safeParse(value).error?.issues ?? []))?.option
    if (fit === undefined) return node
    node = unwrap(fit)
  }
  return node
}

function childSchema (schema: z.ZodType, segment: Segment): z.ZodType | undefined {
  const def = defOf(schema)
  if (def.type === 'object') return def.shape?.[String(segment)]
  if (def.type === 'array') return def.element
  if (def.type === 'record') return def.valueType
  return undefined
}

function formatPath (at: string, path: readonly Segment[]): string {
  let out = at
  for (const segment of path) out += typeof segment === 'number' ? `[${segment}]` : out === '' ? String(segment) : `.${String(segment)}`
  return out
}

/** A misspelt key explains the other complaints (a required key then seems missing): it goes first. */
function first (issues: readonly Issue[]): Issue {
  return issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0] as Issue
}

/** Where a union's value went wrong: in the option it is meant for, or (none stands out) the union. */
function explainUnion (union: z.ZodType, issue: Extract<Issue, { code: 'invalid_union' }>, path: Segment[], value: unknown): [Segment[], string] {
  const def = defOf(unwrap(union))
  const best = meantFor(def.options ?? [], issue.errors)
  return best?.head === undefined ? [path, issue.message] : explain(best.option, best.head, path, value)
}

/** The path and the reason of `issue`, found below `schema` (checking `value`) at `base`. */
function explain (schema: z.ZodType, issue: Issue, base: Segment[], value: unknown): [Segment[], string] {
  // A value no option of a discriminated union takes: reported at the discriminator, or (when the
  // union has a message of its own) at the union, which then speaks for the whole value.
  const noMatch = issue.code === 'invalid_union' && issue.errors.length === 0
  const target = noMatch ? issue.path.length - 1 : issue.path.length
  let node: z.ZodType | undefined = schema
  let here = value
  let whole: [number, string] | undefined
  for (let depth = 0; node !== undefined; depth++) {
    // The innermost schema that speaks for its whole value does.
    const message = wholeMessages.get(node) ?? wholeMessages.get(unwrap(node))
    if (message !== undefined) whole = [depth, message]
    if (depth === target) break
    node = resolve(node, here)
    const segment = issue.path[depth] as Segment
    node = childSchema(node, segment)
    here = typeof here === 'object' && here !== null ? (here as Record<PropertyKey, unknown>)[segment] : undefined
  }
  if (whole !== undefined && issue.code !== 'unrecognized_keys') return [[...base, ...issue.path.slice(0, whole[0])], whole[1]]
  const path = [...base, ...issue.path]
  if (noMatch) return [defOf(unwrap(node ?? schema)).error === undefined ? path : path.slice(0, -1), issue.message]
  if (issue.code === 'invalid_union' && node !== undefined) return explainUnion(node, issue, path, here)
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string
    const shape = node === undefined ? undefined : defOf(resolve(node, here)).shape
    return [[...path, key], unknownKeyReason(key, Object.keys(shape ?? {}))]
  }
  return [path, issue.message]
}

/**
 * Checks `value` against `schema` once, at register, and returns it with its defaults; the
 * caller's object is not changed. A refusal is `INVALID_OPTION` naming the option's path below
 * `at` (`upstream.requestTimeout`) and why, in the words the checks have always used.
 */
export function parseOptions<T extends z.ZodType> (schema: T, at: string, value: unknown): z.output<T> {
  const result = schema.safeParse(value, { error: defaultMessage, reportInput: false })
  if (result.success) return result.data
  const [path, reason] = explain(schema, first(result.error.issues), [], value)
  throw invalid(formatPath(at, path) || at || 'options', reason)
}
