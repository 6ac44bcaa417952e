/**
 * Option checks shared by every plugin: each names the bad option in its error, and none mutates
 * the caller's object.
 */
import { GatewayErrors } from './errors.ts'

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

export function optionalString (name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, 'must be a non-empty string')
  return value
}

export function httpUrl (name: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(name, 'must be an http(s) URL string')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(name, `is not a URL: ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(name, `must use http or https, got ${url.protocol}`)
  return url.href
}

export function stringRecord (name: string, value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isPlainObject(value)) throw invalid(name, 'must be an object of header names to string values')
  const out: Record<string, string> = {}
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalid(`${name}.${key}`, 'must be a string')
    if (/[\r\n]/.test(item)) throw invalid(`${name}.${key}`, 'must not contain CR or LF')
    out[key.toLowerCase()] = item
  }
  return out
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
 * Refuses a key of `value` that is not in `known`: a misspelt option (`requestTimout`) would
 * otherwise fall back to its default without a word. The error names the key and the nearest
 * known one. `at` is the path of `value` ('' at the top).
 */
export function knownKeys (at: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue
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
    throw invalid(at === '' ? key : `${at}.${key}`, `is not a known option${hint}; known: ${known.join(', ')}`)
  }
}
