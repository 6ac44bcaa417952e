/**
 * The tapes plugin's options: where tapes go, which sessions are taped from their start (rules by
 * upstream, principal and client name; an admin can start any other from the admin API), and how
 * large a tape may grow. One schema gives their type, the check at register, and the JSON Schema.
 */
import { int, nonEmptyString, parseOptions, pluginSchema, stringList, z, type SectionInput } from '../lib/options.ts'

const ruleSchema = z.strictObject({
  upstreams: stringList().optional().meta({ description: 'Upstream name globs.' }),
  principals: stringList().optional().meta({ description: 'Principal id globs (inbound auth on).' }),
  clients: stringList().optional().meta({ description: 'Client name globs (clientInfo.name).' })
}, { error: 'must be { upstreams?, principals?, clients? }' })

export const tapesShape = {
  /**
   * The folder tapes are written to (`<started>-<session>.tape.jsonl`).
   * @default 'tapes'
   */
  dir: nonEmptyString().default('tapes').meta({ description: 'The folder tapes are written to. Default: tapes.' }),
  /** Sessions taped from their first message: those matching any rule (every field given must match). */
  record: z.array(ruleSchema).default([]).meta({ description: 'Sessions taped from their start: those matching any rule.' }),
  /**
   * Largest tape, in bytes: a tape that reaches it stops.
   * @default 52428800 (50 MiB)
   */
  maxBytes: int(4096).default(50 * 1024 * 1024).meta({ description: 'Largest tape in bytes (then it stops). Default: 50 MiB.' })
}

export const tapesSchema = pluginSchema(tapesShape)

export type McpTapesOptions = SectionInput<typeof tapesShape>

export type CheckedTapesOptions = z.output<typeof tapesSchema>

export function checkTapesOptions (options: McpTapesOptions): CheckedTapesOptions {
  return parseOptions(tapesSchema, 'tapes', options)
}
