/**
 * The policy plugin's options: rules given here, or a policy file (reloaded when it changes), not
 * both. One schema gives their type, the check that runs once at register, and their part of the
 * config file's JSON Schema.
 */
import { int, invalid, isPlainObject, nonEmptyString, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'
import { policyRuleSchema } from '../lib/policy/spec-schema.ts'

export const policyShape = {
  /**
   * What decides an operation (tools/call, resources/read, prompts/get, completion/complete) that
   * no rule holds for. Other requests are allowed unless a deny rule holds.
   * @default 'allow'
   */
  default: z.enum(['allow', 'deny']).optional().meta({ description: 'What decides an operation no rule holds for. Default: allow.' }),
  /** The rules, in order (deny overrides allow). */
  rules: z.array(policyRuleSchema).optional(),
  /** A JSON file `{ default?, rules }` holding the policy instead; a change to it is picked up without a restart. */
  file: nonEmptyString().optional().meta({ description: 'A JSON policy file ({ default?, rules }), reloaded when it changes.' }),
  /**
   * How often the policy file is looked at besides file-system events (some file systems send none).
   * @default 1000
   */
  pollMs: int(50, 60_000).default(1000).meta({ description: 'How often the policy file is checked besides file-system events.' })
}

export const policySchema = pluginSchema(policyShape)

export type McpPolicyOptions = SectionInput<typeof policyShape>

export type CheckedPolicyOptions = z.output<typeof policySchema>

export function checkPolicyOptions (options: McpPolicyOptions): CheckedPolicyOptions {
  const checked = parseOptions(policySchema, 'policy', options)
  if (checked.file === undefined && isPlainObject(options) && options.pollMs !== undefined) throw invalid('policy.pollMs', 'applies to a policy "file" only')
  if (checked.file !== undefined && (checked.rules !== undefined || checked.default !== undefined)) {
    throw invalid('policy.file', 'give the rules in the file or here, not both')
  }
  if (checked.file === undefined && checked.rules === undefined) throw invalid('policy', 'needs "rules" or "file"')
  return checked
}
