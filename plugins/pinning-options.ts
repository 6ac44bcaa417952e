/**
 * The pinning plugin's options: what a changed tool does until approved, whether new tools need
 * approval too. One schema gives their type, the check that runs once at register, and their
 * part of the config file's JSON Schema.
 */
import { int, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'

export const pinningShape = {
  /**
   * A tool whose definition changed since it was pinned, until an operator approves the change:
   * `pinned` lists it with its pinned definition (calls go on), `hide` leaves it out of lists and
   * refuses its calls (-32055).
   * @default 'pinned'
   */
  mode: z.enum(['pinned', 'hide']).default('pinned').meta({ description: 'A changed tool until approved: pinned (served with its pinned definition) or hide (left out, calls refused).' }),
  /**
   * A tool first listed after the upstream's first list: `allow` pins it as it is; `approve` hides
   * it and refuses its calls until an operator approves it.
   * @default 'allow'
   */
  newTools: z.enum(['allow', 'approve']).default('allow').meta({ description: 'A tool first seen after the upstream\'s first list: allow (pinned as it is) or approve (hidden until approved).' }),
  /**
   * How long after an upstream's first list new tools still count as part of it (a long list
   * comes in pages).
   * @default 60000
   */
  baselineMs: int(0, 86_400_000).default(60_000).meta({ description: 'How long after an upstream\'s first list its tools still count as part of it (pages). Default: 60 s.' })
}

export const pinningSchema = pluginSchema(pinningShape)

export type McpPinningOptions = SectionInput<typeof pinningShape>

export function checkPinningOptions (options: McpPinningOptions): z.output<typeof pinningSchema> {
  return parseOptions(pinningSchema, 'pinning', options)
}
