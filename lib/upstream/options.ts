/** Checks an upstream's options, whatever its kind, naming the bad option in every error. */
import { httpUrl, invalid, isPlainObject, knownKeys, optionalInteger, optionalString, stringRecord } from '../options.ts'
import { CHANNEL_DEFAULTS } from './channel-upstream.ts'
import type { UpstreamOptions } from './create.ts'
import { STDIO_DEFAULTS } from './stdio.ts'
import { UPSTREAM_DEFAULTS } from './streamable-http.ts'
import { TIMEOUT_DEFAULTS, type CheckedTimeouts } from '../deadline.ts'

const KINDS = new Set(['streamable-http', 'stdio', 'sse'])

/** The keys an upstream object may have, by kind (`requestTimeout` and the like: every kind). */
const COMMON_KEYS = ['kind', 'name', 'requestTimeout', 'maxRequestTimeout', 'toolTimeouts']
const CHANNEL_KEYS = ['shared', 'maxSessions', 'maxQueued', 'idleMs']
const POOL_KEYS = ['url', 'headers', 'connections', 'connectTimeout', 'headersTimeout', 'keepAliveTimeout']
export const UPSTREAM_KEYS = {
  stdio: [...COMMON_KEYS, 'command', 'args', 'env', 'cwd', 'killGraceMs', 'maxLineBytes', ...CHANNEL_KEYS],
  sse: [...COMMON_KEYS, ...POOL_KEYS, ...CHANNEL_KEYS],
  'streamable-http': [...COMMON_KEYS, ...POOL_KEYS, 'bodyTimeout', 'pipelining', 'http2', 'protocol']
} as const

function stringList (name: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(name, 'must be an array of strings')
  return [...value]
}

function channelLimits (at: string, value: Record<string, unknown>): { shared: boolean, maxSessions: number, maxQueued: number, idleMs: number } {
  if (value.shared !== undefined && typeof value.shared !== 'boolean') throw invalid(`${at}.shared`, 'must be a boolean')
  return {
    shared: value.shared === true,
    maxSessions: optionalInteger(`${at}.maxSessions`, value.maxSessions, 1, CHANNEL_DEFAULTS.maxChannels),
    maxQueued: optionalInteger(`${at}.maxQueued`, value.maxQueued, 0, CHANNEL_DEFAULTS.maxQueued),
    idleMs: optionalInteger(`${at}.idleMs`, value.idleMs, 0, CHANNEL_DEFAULTS.idleMs)
  }
}

function httpPool (at: string, value: Record<string, unknown>) {
  return {
    headers: stringRecord(`${at}.headers`, value.headers),
    connections: value.connections == null ? null : optionalInteger(`${at}.connections`, value.connections, 1, 1),
    connectTimeout: optionalInteger(`${at}.connectTimeout`, value.connectTimeout, 1, UPSTREAM_DEFAULTS.connectTimeout),
    headersTimeout: optionalInteger(`${at}.headersTimeout`, value.headersTimeout, 1, UPSTREAM_DEFAULTS.headersTimeout),
    keepAliveTimeout: optionalInteger(`${at}.keepAliveTimeout`, value.keepAliveTimeout, 1, UPSTREAM_DEFAULTS.keepAliveTimeout)
  }
}

/** `value` is a URL string (a Streamable HTTP upstream) or an object with a `kind`. */
export function checkUpstreamOptions (at: string, value: unknown, defaultName: string): UpstreamOptions {
  if (typeof value === 'string') return { name: defaultName, url: httpUrl(at, value) }
  if (!isPlainObject(value)) throw invalid(at, 'must be a URL string or an object with a url (or a command, for kind "stdio")')
  const kind = value.kind ?? 'streamable-http'
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw invalid(`${at}.kind`, `must be one of ${[...KINDS].join(', ')}`)
  const name = optionalString(`${at}.name`, value.name, defaultName)
  knownKeys(at, value, UPSTREAM_KEYS[kind as keyof typeof UPSTREAM_KEYS])
  if (kind === 'stdio') {
    if (typeof value.command !== 'string' || value.command.length === 0) throw invalid(`${at}.command`, 'is required for kind "stdio" (the program to run)')
    if (value.cwd !== undefined && typeof value.cwd !== 'string') throw invalid(`${at}.cwd`, 'must be a string')
    return {
      kind: 'stdio',
      name,
      command: value.command,
      args: stringList(`${at}.args`, value.args),
      // Values, not header names: keep the case the child expects.
      env: envRecord(`${at}.env`, value.env),
      cwd: value.cwd,
      killGraceMs: optionalInteger(`${at}.killGraceMs`, value.killGraceMs, 0, STDIO_DEFAULTS.killGraceMs),
      maxLineBytes: optionalInteger(`${at}.maxLineBytes`, value.maxLineBytes, 1024, STDIO_DEFAULTS.maxLineBytes),
      ...channelLimits(at, value)
    }
  }
  if (kind === 'sse') {
    return { kind: 'sse', name, url: httpUrl(`${at}.url`, value.url), ...httpPool(at, value), ...channelLimits(at, value) }
  }
  if (value.http2 !== undefined && typeof value.http2 !== 'boolean') throw invalid(`${at}.http2`, 'must be a boolean')
  const protocol = value.protocol ?? 'auto'
  if (protocol !== 'auto' && protocol !== '2025' && protocol !== '2026') throw invalid(`${at}.protocol`, 'must be "auto", "2025" or "2026"')
  return {
    kind: 'streamable-http',
    name,
    url: httpUrl(`${at}.url`, value.url),
    ...httpPool(at, value),
    bodyTimeout: optionalInteger(`${at}.bodyTimeout`, value.bodyTimeout, 0, UPSTREAM_DEFAULTS.bodyTimeout),
    pipelining: optionalInteger(`${at}.pipelining`, value.pipelining, 1, UPSTREAM_DEFAULTS.pipelining),
    http2: value.http2 === true,
    protocol
  }
}

function envRecord (name: string, value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isPlainObject(value)) throw invalid(name, 'must be an object of variable names to string values')
  const out: Record<string, string> = {}
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalid(`${name}.${key}`, 'must be a string')
    out[key] = item
  }
  return out
}

/** An upstream's request timeouts (a URL string takes the defaults). */
export function checkTimeouts (at: string, value: unknown): CheckedTimeouts {
  const options = isPlainObject(value) ? value : {}
  const tools = new Map<string, number>()
  if (options.toolTimeouts !== undefined) {
    if (!isPlainObject(options.toolTimeouts)) throw invalid(`${at}.toolTimeouts`, 'must be an object of tool names to milliseconds')
    for (const [name, ms] of Object.entries(options.toolTimeouts)) tools.set(name, optionalInteger(`${at}.toolTimeouts.${name}`, ms, 0, 0))
  }
  return {
    requestTimeout: optionalInteger(`${at}.requestTimeout`, options.requestTimeout, 0, TIMEOUT_DEFAULTS.requestTimeout),
    maxRequestTimeout: optionalInteger(`${at}.maxRequestTimeout`, options.maxRequestTimeout, 0, TIMEOUT_DEFAULTS.maxRequestTimeout),
    toolTimeouts: tools
  }
}
