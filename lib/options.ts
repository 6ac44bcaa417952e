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
