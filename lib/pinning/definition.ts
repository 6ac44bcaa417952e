/**
 * What of a tool is pinned: the fields a model reads and a call depends on (name, title,
 * description, input and output schema, annotations), hashed as canonical JSON. A server that
 * changes any of them after approval (a "rug pull") changes the hash.
 */
import { hash } from 'node:crypto'
import { canonicalJson } from '../audit/record.ts'

export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const

export type ToolDefinition = Partial<Record<typeof PINNED_FIELDS[number], unknown>>

export function definitionOf (tool: Record<string, unknown>): ToolDefinition {
  const out: ToolDefinition = {}
  for (const field of PINNED_FIELDS) if (tool[field] !== undefined) out[field] = tool[field]
  return out
}

export function definitionHash (definition: ToolDefinition): string {
  return 'sha256:' + hash('sha256', canonicalJson(definition))
}

/** The tool as listed, with the pinned definition in place of its own (other fields kept). */
export function withDefinition (tool: Record<string, unknown>, definition: ToolDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(tool)) if (!(PINNED_FIELDS as readonly string[]).includes(key)) out[key] = tool[key]
  return Object.assign(out, definition)
}

/** Which pinned fields differ, each with both values (for the admin API and console). */
export function definitionDiff (before: ToolDefinition | null, after: ToolDefinition): Array<{ field: string, before: unknown, after: unknown }> {
  const diff: Array<{ field: string, before: unknown, after: unknown }> = []
  for (const field of PINNED_FIELDS) {
    const was = before?.[field]
    const now = after[field]
    if (canonicalJson(was ?? null) !== canonicalJson(now ?? null)) diff.push({ field, before: was ?? null, after: now ?? null })
  }
  return diff
}
