/**
 * The config file's JSON Schema (examples/gateway/config.schema.json, for editors) agrees with
 * the gateway: it is what the option schemas generate now (`npm run schema`), every example config
 * validates and is accepted, typos are caught, and the README's config snippets validate too.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { checkGatewayConfig } from '../../examples/gateway/config.ts'
import { configJsonSchemaText } from '../../examples/gateway/schema.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const committed = readFileSync(`${ROOT}examples/gateway/config.schema.json`, 'utf8')
const schema = JSON.parse(committed) as object
const ajv = new Ajv({ allErrors: true, strict: false })
;(addFormats as unknown as (ajv: Ajv) => void)(ajv)
const validate = ajv.compile(schema)

t.test('the committed file is what the option schemas generate (run `npm run schema` after changing an option)', async (t) => {
  t.equal(committed, configJsonSchemaText())
})

t.test('every example config validates and is accepted', async (t) => {
  const dir = `${ROOT}examples/gateway/configs/`
  for (const file of readdirSync(dir)) {
    const config = JSON.parse(readFileSync(dir + file, 'utf8')) as Record<string, unknown>
    t.ok(validate(config), `${file}: ${ajv.errorsText(validate.errors)}`)
    t.doesNotThrow(() => checkGatewayConfig(config), `${file} is accepted by the gateway`)
  }
})

t.test('the README\'s JSON config snippets validate', async (t) => {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8')
  const snippets = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => JSON.parse(match[1] as string) as Record<string, unknown>)
  const configs = snippets.filter((snippet) => 'upstream' in snippet || 'upstreams' in snippet)
  t.ok(configs.length >= 2, `${configs.length} config snippets`)
  for (const config of configs) t.ok(validate(config), ajv.errorsText(validate.errors))
  // Fragments (auth, interceptors): valid once an upstream is added.
  for (const fragment of snippets.filter((snippet) => !configs.includes(snippet))) {
    t.ok(validate({ upstream: 'http://127.0.0.1:4000/mcp', ...fragment }), `fragment ${Object.keys(fragment).join(', ')}: ${ajv.errorsText(validate.errors)}`)
  }
})

t.test('typos and wrong types are caught', async (t) => {
  t.notOk(validate({ upstream: 'http://x/mcp', sesions: {} }), 'an unknown top-level key')
  t.notOk(validate({ upstream: { url: 'http://x/mcp', requestTimout: 5 } }), 'an unknown upstream key')
  t.notOk(validate({ upstream: { kind: 'stdio' } }), 'stdio without a command')
  t.notOk(validate({ upstreams: [{ url: 'http://x/mcp' }] }), 'a named upstream without a name')
  t.notOk(validate({ port: 3000 }), 'no upstream at all')
  t.notOk(validate({ upstream: 'http://x/mcp', store: { type: 'redis' } }), 'redis without a url')
})

t.test('what only code can give is not in the file, and the file refuses it', async (t) => {
  const properties = (schema as { properties: Record<string, { properties?: Record<string, unknown> }> }).properties
  t.notOk('route' in properties, 'route hooks')
  t.notOk('prefix' in properties, 'Fastify\'s own register options')
  t.notOk(JSON.stringify(properties.sessions).includes('"store"'), 'a session store object')
  t.notOk(validate({ upstream: 'http://x/mcp', store: { type: 'redis', url: 'redis://x', client: {} } }), 'a Redis client')
  t.notOk(validate({ upstream: 'http://x/mcp', interceptors: { interceptors: [] } }), 'interceptor objects')
  t.notOk(validate({ upstream: 'http://x/mcp', interceptors: { rules: [{ block: { tool: 'x', resaon: 'typo' } }] } }), 'a misspelt key inside a rule')
})
