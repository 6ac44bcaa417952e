/**
 * What a policy is written as, in the config file (`policy`) or a policy file of its own: one
 * schema for both, so the file is checked exactly as the config is (unknown keys refused).
 */
import { nonEmptyString, z } from '../options.ts'

export const policyRuleSchema = z.strictObject({
  name: nonEmptyString().meta({ description: 'The rule\'s name: in denials (`data.rule`), logs, metrics and the explain command.' }),
  effect: z.enum(['allow', 'deny']),
  when: nonEmptyString().meta({ description: 'A CEL expression of type bool over principal, upstream, method, tool, arguments, resource, prompt, headers, session and now.' }),
  message: nonEmptyString().optional().meta({ description: 'What a client the rule denies is told.' })
})

/** A policy file's content: `{ default?, rules }`. */
export const policyFileSchema = z.strictObject({
  default: z.enum(['allow', 'deny']).optional().meta({ description: 'What decides an operation (tools/call, resources/read, prompts/get, completion/complete) no rule holds for. Default: allow.' }),
  rules: z.array(policyRuleSchema)
})
