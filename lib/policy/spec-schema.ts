/**
 * What a policy is written as, in the config file (`policy`) or a policy file of its own: one
 * schema for both, so the file is checked exactly as the config is (unknown keys refused).
 */
import { int, nonEmptyString, stringList, z } from '../options.ts'

export const policyRuleSchema = z.strictObject({
  name: nonEmptyString().meta({ description: 'The rule\'s name: in denials (`data.rule`), logs, metrics and the explain command.' }),
  effect: z.enum(['allow', 'deny', 'approve']).meta({ description: 'allow, deny, or approve: a tools/call waits for a person to approve it (admin API, console).' }),
  when: nonEmptyString().meta({ description: 'A CEL expression of type bool over principal, upstream, method, tool, arguments, resource, prompt, headers, session and now.' }),
  message: nonEmptyString().optional().meta({ description: 'What a client the rule denies is told.' }),
  approvers: stringList().optional().meta({ description: 'approve: who may decide (globs of admin names; default: any admin).' }),
  timeoutMs: int(1000, 86_400_000).optional().meta({ description: 'approve: how long a call waits for a decision before it is refused (ms). Default: 300000.' })
}).refine((rule) => rule.effect === 'approve' || (rule.approvers === undefined && rule.timeoutMs === undefined), { message: 'approvers and timeoutMs belong to rules whose effect is "approve"' })

/** A policy file's content: `{ default?, rules }`. */
export const policyFileSchema = z.strictObject({
  default: z.enum(['allow', 'deny']).optional().meta({ description: 'What decides an operation (tools/call, resources/read, prompts/get, completion/complete) no rule holds for. Default: allow.' }),
  rules: z.array(policyRuleSchema)
})
