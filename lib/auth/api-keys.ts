/**
 * Static API keys. Keys are kept only as SHA-256 digests and every stored digest is compared, in
 * constant time, with the presented key's: neither the comparison nor which key matched shows in
 * the time taken.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { GatewayErrors } from '../errors.ts'
import type { Principal, Verifier } from './principal.ts'

export interface ApiKey {
  /** The principal's id (what sessions are bound to and rate limits count by). */
  name: string
  key: string
  /** Scopes this key grants, for per-tool rules. @default [] */
  scopes?: string[]
}

export interface ApiKeyOptions {
  keys: ApiKey[]
  /**
   * Header carrying the key. `authorization` takes `Bearer <key>`; any other header takes the
   * key as its whole value.
   * @default 'authorization'
   */
  header?: string
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export class ApiKeyVerifier implements Verifier {
  private readonly header: string
  private readonly keys: Array<{ digest: Buffer, principal: Principal }>

  constructor (options: ApiKeyOptions) {
    this.header = (options.header ?? 'authorization').toLowerCase()
    this.keys = options.keys.map((key) => ({ digest: digest(key.key), principal: { id: key.name, scopes: [...(key.scopes ?? [])], method: 'api-key' } }))
  }

  async verify (headers: Record<string, string | string[] | undefined>): Promise<Principal> {
    const value = headers[this.header]
    if (typeof value !== 'string' || value.length === 0) throw new GatewayErrors.UNAUTHORIZED('an API key is required')
    let presented = value
    if (this.header === 'authorization') {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(value)
      if (match === null) throw new GatewayErrors.UNAUTHORIZED('the Authorization header must be "Bearer <key>"')
      presented = match[1] as string
    }
    const candidate = digest(presented)
    let found: Principal | undefined
    for (const key of this.keys) {
      // No early exit: every key is compared whatever matched.
      if (timingSafeEqual(candidate, key.digest)) found ??= key.principal
    }
    if (found === undefined) throw new GatewayErrors.UNAUTHORIZED('the API key is not valid')
    return found
  }
}

/**
 * Keys from a file: one per line, `name:key` or `name:key:scope1 scope2`; blank lines and lines
 * starting with `#` are skipped.
 */
export function parseKeyFile (text: string, source: string): ApiKey[] {
  const keys: ApiKey[] = []
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    const [name, key, scopes] = line.split(':')
    if (name === undefined || name.length === 0 || key === undefined || key.length === 0) throw new Error(`${source}:${index + 1}: expected name:key or name:key:scopes`)
    keys.push({ name, key, scopes: scopes === undefined ? [] : scopes.split(/\s+/).filter((s) => s.length > 0) })
  }
  return keys
}
