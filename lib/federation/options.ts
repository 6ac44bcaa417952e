/**
 * A virtual server's options: one MCP endpoint over several member upstreams (any kind, any era),
 * each with a namespace and per-kind filters, renames and description overrides. One schema gives
 * the type users write, the defaults, the check at start (errors name the entry) and the config
 * file's JSON Schema.
 */
import { int, nonEmptyString, stringList, z } from '../options.ts'
import { nameField, timeoutShape, upstreamSchema } from '../upstream/options.ts'

export const FEDERATION_DEFAULTS = {
  naming: 'prefix',
  separator: '_',
  memberTimeout: 10_000,
  cacheTtl: 300_000,
  pageSize: 100,
  retryMs: 1000,
  maxRetryMs: 30_000
} as const

/** A namespace is also a URI scheme's first part (`<namespace>+<uri>`): a letter, then letters, digits, "." or "-". */
export const NAMESPACE = /^[A-Za-z][A-Za-z0-9.-]*$/
export const NAMESPACE_RULE = 'must be a letter, then letters, digits, "." or "-" (it prefixes names and URI schemes)'

/** What a member shows of one kind (tools, prompts, resources). Globs match the upstream's own names. */
const kindFilterSchema = z.strictObject({
  /** Only these (globs on the upstream's own names); all when absent. */
  include: stringList().optional().meta({ description: 'Only these, by the upstream\'s own names (globs). All when absent.' }),
  /** Never these (globs on the upstream's own names), even when included. @default [] */
  exclude: stringList().default([]).meta({ description: 'Never these, by the upstream\'s own names (globs).' }),
  /**
   * The exposed name of some, by the upstream's own name: used as it is (no namespace prefix).
   * For resources the key and value are URIs.
   * @default {}
   */
  rename: z.record(z.string(), nonEmptyString(), { error: 'must be an object of upstream names to exposed names' }).default({})
    .meta({ description: 'Exposed names by the upstream\'s own name, used as they are (no prefix). Resources: URIs.' }),
  /** A description to show instead of the upstream's, by the upstream's own name. @default {} */
  describe: z.record(z.string(), z.string({ error: 'must be a string' }), { error: 'must be an object of upstream names to descriptions' }).default({})
    .meta({ description: 'Descriptions shown instead of the upstream\'s, by the upstream\'s own name.' })
}).meta({ id: 'federationKindFilter' })

export const memberSchema = z.strictObject({
  /** The member upstream: a Streamable HTTP URL or any upstream's options (not another virtual server). */
  upstream: upstreamSchema.meta({ description: 'The member upstream: a URL or an upstream object of any kind.' }),
  /**
   * Prefix of this member's tool and prompt names (`<namespace><separator><name>`) and resource
   * URIs (`<namespace>+<uri>`), when the naming mode calls for one. @default the upstream's name
   */
  namespace: nonEmptyString().regex(NAMESPACE, { error: NAMESPACE_RULE }).optional()
    .meta({ description: 'Prefix of this member\'s names and URIs. Default: the upstream\'s name.' }),
  /** Longest wait for this member to open a session or answer a list; past it, it is left out for now. @default 10000 ms */
  timeout: int(1).default(FEDERATION_DEFAULTS.memberTimeout).meta({ description: 'Longest wait for this member to open or answer a list; past it the member is left out for now.' }),
  tools: kindFilterSchema.optional(),
  prompts: kindFilterSchema.optional(),
  resources: kindFilterSchema.optional()
}).meta({ id: 'federationMember', description: 'One upstream of a virtual server.' })

/** The part of a virtual upstream that is federation's own (the rest is an endpoint's: name, path, timeouts). */
export const virtualShape = {
  kind: z.literal('virtual'),
  /** The upstreams behind this endpoint, in priority order (the first wins a name nobody prefixes). */
  members: z.array(memberSchema).min(1, { error: 'must name at least one member upstream' })
    .meta({ description: 'The upstreams behind this endpoint, in priority order.' }),
  /**
   * How exposed names are made: `prefix` (every name gets its member's namespace), `collision`
   * (only names two members share), `none` (names as they are; a shared one goes to the first
   * member listed).
   * @default 'prefix'
   */
  naming: z.enum(['prefix', 'collision', 'none'], { error: 'must be "prefix", "collision" or "none"' }).default(FEDERATION_DEFAULTS.naming)
    .meta({ description: 'prefix: every name namespaced; collision: only shared names; none: as they are, the first member wins a shared name.' }),
  /** Between namespace and name. @default '_' */
  separator: z.string().regex(/^[A-Za-z0-9_.-]{1,4}$/, { error: 'must be 1 to 4 of letters, digits, "_", "." or "-"' }).default(FEDERATION_DEFAULTS.separator),
  /** How long a member's list is kept when it never says it changed (0: ask every time). @default 300000 ms */
  cacheTtl: int(0).default(FEDERATION_DEFAULTS.cacheTtl).meta({ description: 'How long a member\'s list is kept without a list_changed (0: not kept).' }),
  /** Items per page of a merged list (the gateway's own cursors). @default 100 */
  pageSize: int(1).default(FEDERATION_DEFAULTS.pageSize)
}

/** A virtual upstream: an endpoint's own options (name, timeouts) and the federation's. */
export const virtualUpstreamSchema = z.strictObject({
  /** Names the virtual server: its `serverInfo.name`, and the upstream in logs and metrics. */
  name: nameField,
  ...timeoutShape,
  ...virtualShape
}).meta({ id: 'virtualUpstream', description: 'A virtual server: several upstreams behind one MCP endpoint.' })

export type VirtualOptionsInput = z.input<typeof virtualUpstreamSchema>
export type VirtualUpstreamOptions = z.output<typeof virtualUpstreamSchema> & { name: string }
export type CheckedMember = z.output<typeof memberSchema>
export type KindFilter = z.output<typeof kindFilterSchema>
