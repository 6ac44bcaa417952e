/**
 * Makes the config file's JSON Schema (examples/gateway/config.schema.json) from the option
 * schemas, so the file cannot drift from what the gateway accepts: `npm run schema` writes it, and
 * test/plugins/config-schema.test.ts fails when the committed file is not what this makes now.
 * What a file cannot hold (functions, clients, stores: `codeOnly` in lib/options.ts) is left out.
 */
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { codeOnlySchemas, z } from '../../lib/options.ts'
import { gatewayConfigShape } from './config.ts'

type Json = Record<string, unknown>

/** Set on the JSON of a code-only schema while generating, removed with it by `tidy`. */
const CODE_ONLY = 'x-code-only'

const HEADER = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://github.com/fastify-mcp-gateway/fastify-mcp-gateway/examples/gateway/config.schema.json',
  title: 'fastify-mcp-gateway configuration',
  description: 'The config file of the bundled gateway (CLI --config) and the argument of createGateway(). Generated from the option schemas (npm run schema): do not edit. See the README for every option.'
}

const isJson = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)
const codeOnly = (value: unknown): boolean => isJson(value) && value[CODE_ONLY] === true

/** zod's JSON, made plain: code-only parts out, single-option unions and `allOf` wrappers inlined. */
function tidy (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy)
  if (!isJson(node)) return node
  let out: Json = {}
  for (const [key, value] of Object.entries(node)) out[key] = tidy(value)
  // A JavaScript number's safe range, which zod states for every integer: not a limit of ours.
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum
  if (isJson(out.properties)) {
    const properties = out.properties
    const dropped = Object.keys(properties).filter((key) => codeOnly(properties[key]))
    for (const key of dropped) delete properties[key]
    if (Array.isArray(out.required)) out.required = out.required.filter((key) => !dropped.includes(key as string))
  }
  for (const union of ['anyOf', 'oneOf'] as const) {
    const options = out[union]
    if (!Array.isArray(options)) continue
    // A union inside a union (a URL or one of the kinds) reads better as one list.
    const flat = options.flatMap((option) => {
      const inner = isJson(option) && Object.keys(option).length === 1 ? option.anyOf ?? option.oneOf : undefined
      return Array.isArray(inner) ? inner as unknown[] : [option]
    })
    const kept = flat.filter((option) => !codeOnly(option))
    if (kept.length === 0) out[CODE_ONLY] = true
    const { [union]: _options, ...rest } = out
    out = kept.length === 1 ? { ...rest, ...(kept[0] as Json) } : { ...rest, [union]: kept }
  }
  if (Array.isArray(out.allOf) && out.allOf.length === 1 && isJson(out.allOf[0])) {
    const { allOf, ...rest } = out
    out = { ...rest, ...(allOf as Json[])[0] }
  }
  return out
}

export function configJsonSchema (): Json {
  const root = z.strictObject(gatewayConfigShape)
  const json = z.toJSONSchema(root, {
    target: 'draft-7',
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const schema = ctx.zodSchema as unknown as z.ZodType
      if (codeOnlySchemas.has(schema)) {
        ctx.jsonSchema[CODE_ONLY] = true
      } else if (schema.def.type === 'custom') {
        // A check only code can make, on an option a file may set: it needs a JSON form first.
        throw new Error(`an option of the config file has no JSON Schema (${ctx.path.join('.')})`)
      }
    }
  }) as Json
  const { $schema: _draft, ...body } = tidy(json) as Json
  // The preset needs one of the two (checkGatewayConfig says so at start, in its own words).
  return { ...HEADER, ...body, anyOf: [{ required: ['upstream'] }, { required: ['upstreams'] }] }
}

/** The file's text: what `npm run schema` writes and the test compares. */
export function configJsonSchemaText (): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Run from dist/ (npm run schema builds first): the file is the source tree's.
  const root = new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url)
  const target = fileURLToPath(new URL('examples/gateway/config.schema.json', root))
  await writeFile(target, configJsonSchemaText())
  console.log(`wrote ${target}`)
}
