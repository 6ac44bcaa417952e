/**
 * Tokens at rest: AES-256-GCM under a key from the gateway's environment, the record's own store
 * key as additional data (a sealed value copied under another principal's key does not open).
 * Several keys rotate: the first seals, every one opens, and each sealed value names its key by
 * a short id, so a value sealed under a retired key fails to open (its user signs in again).
 *
 * Format: `v1.<key id>.<iv>.<ciphertext>.<tag>`, base64url parts.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { invalid } from '../options.ts'

interface Key {
  id: string
  secret: Buffer
}

export class Sealer {
  private readonly keys: Map<string, Key>
  private readonly current: Key

  /** `keys`: base64 (or base64url) encodings of 32 random bytes each, the sealing one first. */
  constructor (keys: readonly string[], at = 'identity.keys') {
    if (keys.length === 0) throw invalid(at, 'needs at least one key (32 random bytes, base64): set MCP_GATEWAY_TOKEN_KEYS, e.g. to the output of `openssl rand -base64 32`')
    const parsed = keys.map((text, index) => {
      const secret = Buffer.from(text.trim(), 'base64')
      if (secret.length !== 32) throw invalid(`${at}[${index}]`, `must be 32 bytes in base64 (got ${secret.length} bytes)`)
      return { id: createHash('sha256').update(secret).digest('base64url').slice(0, 8), secret }
    })
    this.current = parsed[0] as Key
    this.keys = new Map(parsed.map((key) => [key.id, key]))
  }

  seal (plain: string, context: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.current.secret, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return ['v1', this.current.id, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }

  /** The plain text, or undefined when the value is not one sealed here for `context` (or its key is gone). */
  open (sealed: string, context: string): string | undefined {
    const [version, id, iv, body, tag] = sealed.split('.')
    if (version !== 'v1' || id === undefined || iv === undefined || body === undefined || tag === undefined) return undefined
    const key = this.keys.get(id)
    if (key === undefined) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.secret, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(context))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }

  /** A value sealed under an older key: worth sealing again under the current one. */
  stale (sealed: string): boolean {
    return sealed.split('.', 2)[1] !== this.current.id
  }
}

/** Keys from the environment: `MCP_GATEWAY_TOKEN_KEYS`, comma-separated, the sealing key first. */
export function keysFromEnvironment (env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.MCP_GATEWAY_TOKEN_KEYS ?? '').split(',').map((key) => key.trim()).filter((key) => key.length > 0)
}
