/**
 * The audit plugin's options: where records go (a JSONL file rotated by size, the logger, or
 * both), what of the arguments they keep, and which methods are recorded. One schema gives their
 * type, the check that runs once at register, and their part of the config file's JSON Schema.
 */
import { int, invalid, nonEmptyString, parseOptions, pluginSchema, section, stringList, z, type SectionInput } from '../lib/options.ts'
import { DEFAULT_REDACT } from '../lib/audit/record.ts'

export const AUDITED_METHODS = ['tools/call', 'resources/read', 'prompts/get']

const fileShape = {
  /** The JSONL file; rotated files are `<path>.1` (newest) to `<path>.<keep>`. */
  path: nonEmptyString().meta({ description: 'The JSONL audit file; rotated files are <path>.1 (newest) to <path>.<keep>.' }),
  /**
   * Rotate once the file holds this many bytes.
   * @default 10485760 (10 MiB)
   */
  maxBytes: int(4096).default(10 * 1024 * 1024).meta({ description: 'Rotate once the file holds this many bytes. Default: 10 MiB.' }),
  /**
   * Rotated files kept; the oldest beyond is deleted.
   * @default 10
   */
  keep: int(1, 1000).default(10).meta({ description: 'Rotated files kept; the oldest beyond is deleted. Default: 10.' })
}

export const auditShape = {
  /** A JSONL file, hash-chained (each record carries the SHA-256 of the one before). */
  file: section(fileShape).optional().meta({ description: 'A JSONL file, hash-chained and rotated by size.' }),
  /**
   * Also log each record through the server's logger (pino, at info, as `audit`).
   * @default false
   */
  log: z.boolean().default(false).meta({ description: 'Also log each record (pino, at info).' }),
  /**
   * `digest`: records carry a SHA-256 of the arguments only; `redacted`: the arguments too, with
   * the values of keys matching `redact` replaced by "[redacted]".
   * @default 'digest'
   */
  arguments: z.enum(['digest', 'redacted']).default('digest').meta({ description: 'digest: a SHA-256 of the arguments only; redacted: the arguments too, secrets hidden.' }),
  /**
   * Key globs (case-insensitive, `*` any run) whose values `redacted` arguments hide, at any depth.
   * @default password, secret, token, API key, authorization, credential, private key, cookie
   */
  redact: stringList().default(DEFAULT_REDACT).meta({ description: 'Key globs (case-insensitive) whose values redacted arguments hide.' }),
  /**
   * The methods whose every request is recorded (any request a policy denies is recorded too).
   * @default ['tools/call', 'resources/read', 'prompts/get']
   */
  methods: stringList().default(AUDITED_METHODS).meta({ description: 'Methods whose every request is recorded. Default: tools/call, resources/read, prompts/get.' }),
  /**
   * Most records waiting to be written; more are dropped and counted (a slow sink never holds calls).
   * @default 10000
   */
  queueLimit: int(1, 10_000_000).default(10_000).meta({ description: 'Most records waiting to be written; more are dropped and counted.' }),
  /**
   * How long a record may wait to be written with the ones after it, in ms (one write per batch:
   * a write costs tens of µs of CPU, a record a few). A crash loses at most this much.
   * @default 50
   */
  flushMs: int(0, 10_000).default(50).meta({ description: 'How long a record may wait to be written with others (ms). Default: 50.' })
}

export const auditSchema = pluginSchema(auditShape)

export type McpAuditOptions = SectionInput<typeof auditShape>

export type CheckedAuditOptions = z.output<typeof auditSchema>

export function checkAuditOptions (options: McpAuditOptions): CheckedAuditOptions {
  const checked = parseOptions(auditSchema, 'audit', options)
  if (checked.file === undefined && !checked.log) throw invalid('audit', 'needs a "file", or "log": true')
  return checked
}
