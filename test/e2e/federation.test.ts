/**
 * Federation end to end: one virtual server over published MCP servers (server-everything over
 * stdio and Streamable HTTP, server-memory, server-filesystem) and a 2026-only upstream built with
 * the 2.x SDK, as 1.x and 2.x SDK clients see it.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { CreateMessageRequestSchema, ElicitRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client'
import { eventually, gateway, textOf } from '../helpers/peers.ts'
import { modernUpstream } from '../helpers/eras.ts'
import { everythingHttp, everythingStdio, filesystemStdio, memoryStdio } from '../helpers/published-servers.ts'

type Teardown = { teardown (fn: () => unknown): void }

/** A 1.x client that answers elicitation and sampling, and counts tools/list_changed. */
async function legacyClient (t: Teardown, url: string) {
  const client = new Client({ name: 'fed-test', version: '1.0.0' }, { capabilities: { elicitation: { form: {} }, sampling: {} } })
  const seen = { elicited: 0, sampled: 0, toolsChanged: 0 }
  client.setRequestHandler(ElicitRequestSchema, async () => {
    seen.elicited++
    return { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'Once', email: 'ada@example.com', homepage: 'https://example.com', birthdate: '1815-12-10', integer: 3, number: 1.5, untitledSingleSelectEnum: 'option1', titledSingleSelectEnum: 'value1', legacyTitledEnum: 'opt1', untitledMultipleSelectEnum: ['option1'], titledMultipleSelectEnum: ['value1'] } }
  })
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    seen.sampled++
    return { role: 'assistant', content: { type: 'text', text: 'sampled by the test client' }, model: 'test-model' }
  })
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => { seen.toolsChanged++ })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  t.teardown(() => client.close())
  return { client, seen }
}

/** Lists tools until `ok` holds for the names (at most 100 tries, 100 ms apart). */
async function listedSoon (client: Client, ok: (names: string[]) => boolean): Promise<boolean> {
  for (let tries = 0; tries < 100; tries++) {
    if (ok((await client.listTools()).tools.map((tool) => tool.name))) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

async function modernSdkClient (t: Teardown, url: string): Promise<ModernClient> {
  const client = new ModernClient({ name: 'fed-test-2x', version: '2.0.0' }, { capabilities: {} })
  await client.connect(new ModernTransport(new URL(url)))
  t.teardown(() => client.close())
  return client
}

t.test('one virtual server over five upstreams, as 1.x and 2.x clients see it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fed-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const http = await everythingHttp(t)
  const modern = await modernUpstream(t)
  const gw = await gateway(t, {
    upstream: {
      kind: 'virtual',
      name: 'all',
      members: [
        { namespace: 'ev', upstream: everythingStdio('everything') },
        { namespace: 'mem', upstream: memoryStdio('memory', join(dir, 'memory.json')), tools: { rename: { read_graph: 'memory_dump' } } },
        { namespace: 'fs', upstream: filesystemStdio('filesystem', dir), tools: { include: ['read_*', 'write_file', 'list_directory'] } },
        { namespace: 'evh', upstream: { name: 'everything-http', url: http.url }, tools: { include: ['echo', 'get-sum'], describe: { echo: 'Echo, over HTTP' } }, prompts: { exclude: ['*'] }, resources: { exclude: ['*'] } },
        { namespace: 'modern', upstream: { name: 'modern', url: modern.url, protocol: '2026' } }
      ]
    }
  })

  const legacy = await legacyClient(t, gw.url)
  t.equal(legacy.client.getServerVersion()?.name, 'all', 'the virtual server names itself')
  const capabilities = legacy.client.getServerCapabilities() ?? {}
  t.ok(capabilities.tools !== undefined && capabilities.prompts !== undefined && capabilities.resources !== undefined, 'capabilities some member offers')

  const tools = (await legacy.client.listTools()).tools
  const names = new Set(tools.map((tool) => tool.name))
  for (const name of ['ev_echo', 'ev_get-sum', 'mem_create_entities', 'memory_dump', 'fs_write_file', 'fs_read_text_file', 'evh_echo', 'evh_get-sum', 'modern_echo', 'modern_add']) {
    t.ok(names.has(name), `lists ${name}`)
  }
  for (const name of ['mem_read_graph', 'fs_edit_file', 'evh_get-env', 'echo']) t.notOk(names.has(name), `does not list ${name}`)
  t.equal(tools.find((tool) => tool.name === 'evh_echo')?.description, 'Echo, over HTTP', 'a description override')

  await legacy.client.callTool({ name: 'fs_write_file', arguments: { path: join(dir, 'note.txt'), content: 'written through the virtual server' } })
  t.equal(textOf(await legacy.client.callTool({ name: 'fs_read_text_file', arguments: { path: join(dir, 'note.txt') } })), 'written through the virtual server', 'a file written through filesystem reads back')
  await legacy.client.callTool({ name: 'mem_create_entities', arguments: { entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] } })
  t.match(textOf(await legacy.client.callTool({ name: 'mem_search_nodes', arguments: { query: 'Ada' } })), /first program/, 'an entity created in memory is found')
  t.match(textOf(await legacy.client.callTool({ name: 'memory_dump', arguments: {} })), /Ada/, 'a renamed tool reaches its upstream')
  t.equal(textOf(await legacy.client.callTool({ name: 'evh_echo', arguments: { message: 'hi' } })), 'Echo: hi', 'the HTTP member answers')
  t.equal(textOf(await legacy.client.callTool({ name: 'modern_add', arguments: { a: 2, b: 3 } })), '5', 'the 2026-only member answers')

  const prompts = (await legacy.client.listPrompts()).prompts.map((prompt) => prompt.name)
  t.ok(prompts.includes('ev_simple-prompt'), 'prompts are namespaced')
  t.notOk(prompts.some((name) => name.startsWith('evh_')), 'an excluded member\'s prompts are left out')
  const prompt = await legacy.client.getPrompt({ name: 'ev_simple-prompt' })
  t.ok(prompt.messages.length > 0, 'prompts/get reaches its member')

  const resources = (await legacy.client.listResources()).resources
  t.ok(resources.length > 0, 'resources are listed')
  t.same(resources.filter((resource) => !/^(ev|mem)\+/.test(resource.uri)).map((resource) => resource.uri), [], 'resource URIs are namespaced')
  const graph = await legacy.client.readResource({ uri: 'mem+memory://knowledge-graph' })
  t.match(JSON.stringify(graph.contents), /Ada/, 'a namespaced URI reads from its member')
  const read = await legacy.client.readResource({ uri: resources[0]?.uri as string })
  t.equal(read.contents[0]?.uri, resources[0]?.uri, 'a read answers under the namespaced URI')
  const templates = (await legacy.client.listResourceTemplates()).resourceTemplates
  const template = templates.find((entry) => entry.uriTemplate.includes('{resourceId}'))
  t.ok(template?.uriTemplate.startsWith('ev+'), 'templates are namespaced')
  const expanded = (template?.uriTemplate as string).replace('{resourceId}', '1')
  const fromTemplate = await legacy.client.readResource({ uri: expanded })
  t.equal(fromTemplate.contents[0]?.uri, expanded, 'a template\'s expansion, listed nowhere, finds its member')

  const unknown = await legacy.client.callTool({ name: 'nobody_here', arguments: {} }).then(() => undefined, (err: { code?: number, message?: string }) => err)
  t.equal(unknown?.code, -32602, 'an unknown tool is invalid params')
  t.match(unknown?.message, /virtual server all has no tool nobody_here/)

  const modernClient = await modernSdkClient(t, gw.url)
  const modernNames = new Set((await modernClient.listTools()).tools.map((tool) => tool.name))
  // server-everything offers its elicitation and sampling tools only to clients that can answer them.
  const asked = new Set([...names].filter((name) => !/^ev_trigger-(elicitation|sampling)-request$/.test(name)))
  t.same(modernNames, asked, 'a 2.x client sees the same tools (but those for capabilities it lacks)')
  t.match(textOf(await modernClient.callTool({ name: 'mem_search_nodes', arguments: { query: 'Ada' } })), /first program/, 'its own memory server reads the same memory file')
  t.equal(textOf(await modernClient.callTool({ name: 'fs_read_text_file', arguments: { path: join(dir, 'note.txt') } })), 'written through the virtual server', 'and its calls reach the same filesystem')
})

t.test('progress, elicitation and sampling from a member round-trip', async (t) => {
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'ev', members: [{ namespace: 'ev', upstream: everythingStdio('everything') }, { namespace: 'mem', upstream: memoryStdio('memory', join(tmpdir(), `fed-mem-${process.pid}.json`)) }] } })
  const { client, seen } = await legacyClient(t, gw.url)
  const progress: number[] = []
  const done = await client.callTool({ name: 'ev_trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => { progress.push(p.progress) } })
  t.match(textOf(done), /Long running operation completed/)
  t.same(progress, [1, 2, 3], 'each progress notification, in order')
  const elicited = await client.callTool({ name: 'ev_trigger-elicitation-request', arguments: {} })
  t.equal(seen.elicited, 1, 'the member\'s elicitation reached the client')
  t.match(JSON.stringify(elicited), /Ada/, 'and the answer went back to the member')
  const sampled = await client.callTool({ name: 'ev_trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 10 } })
  t.equal(seen.sampled, 1, 'the member\'s sampling request reached the client')
  t.match(JSON.stringify(sampled), /sampled by the test client/, 'and its answer went back')
})

t.test('names two members share, per naming mode', async (t) => {
  const http = await everythingHttp(t)
  const members = [
    { namespace: 'local', upstream: everythingStdio('local', { FED_MARK: 'from-stdio' }), tools: { include: ['echo', 'get-env'] } },
    { namespace: 'remote', upstream: { name: 'remote', url: http.url }, tools: { include: ['echo', 'get-env', 'get-sum'] } }
  ]
  const collision = await gateway(t, { upstream: { kind: 'virtual', name: 'c', naming: 'collision', members } })
  const { client } = await legacyClient(t, collision.url)
  const names = (await client.listTools()).tools.map((tool) => tool.name).sort()
  t.same(names, ['get-sum', 'local_echo', 'local_get-env', 'remote_echo', 'remote_get-env'], 'collision: only shared names are namespaced')

  const none = await gateway(t, { upstream: { kind: 'virtual', name: 'n', naming: 'none', members } })
  const second = await legacyClient(t, none.url)
  const plain = (await second.client.listTools()).tools.map((tool) => tool.name).sort()
  t.same(plain, ['echo', 'get-env', 'get-sum'], 'none: names as they are')
  t.match(textOf(await second.client.callTool({ name: 'get-env', arguments: {} })), /from-stdio/, 'a shared name goes to the first member listed')
})

t.test('a member killed mid-session, then restarted', async (t) => {
  const http = await everythingHttp(t)
  const gw = await gateway(t, {
    upstream: {
      kind: 'virtual',
      name: 'pair',
      members: [
        { namespace: 'local', upstream: everythingStdio('local'), tools: { include: ['echo'] } },
        { namespace: 'remote', upstream: { name: 'remote', url: http.url }, tools: { include: ['echo'] } }
      ]
    }
  })
  const { client, seen } = await legacyClient(t, gw.url)
  t.same((await client.listTools()).tools.map((tool) => tool.name).sort(), ['local_echo', 'remote_echo'])

  const opened = seen.toolsChanged
  await http.kill()
  // server-everything itself may announce a change late after its session opened: wait (bounded)
  // for the list to shrink, not for any announcement.
  t.ok(await listedSoon(client, (names) => !names.includes('remote_echo')), 'the list shrinks')
  t.ok(seen.toolsChanged > opened, 'and the client was told')
  const failed = await client.callTool({ name: 'remote_echo', arguments: { message: 'x' } }).then(() => undefined, (err: { code?: number, message?: string }) => err)
  t.equal(failed?.code, -32071, 'its calls get the coded error')
  t.match(failed?.message, /Upstream remote of virtual server pair is unavailable/, 'naming the upstream')
  t.equal(textOf(await client.callTool({ name: 'local_echo', arguments: { message: 'still here' } })), 'Echo: still here', 'the others are unaffected')
  const ready = await fetch(gw.url.replace(/\/mcp$/, '/readyz'))
  const health = await ready.json() as { status: string, checks: Record<string, string>, degraded?: string[] }
  t.equal(ready.status, 200, '/readyz: ready while a member can serve')
  t.same(health.degraded, ['upstream:pair/remote'], 'and names the member that cannot')
  t.equal(health.checks['upstream:pair/local'], 'ok')
  const metrics = await (await fetch(gw.url.replace(/\/mcp$/, '/metrics'))).text()
  t.match(metrics, /mcp_gateway_virtual_member_up\{upstream="pair",member="remote"\} 0/, 'the member is down in metrics')
  t.match(metrics, /mcp_gateway_virtual_member_up\{upstream="pair",member="local"\} 1/, 'the other is up')

  const before = seen.toolsChanged
  await http.start()
  await eventually(() => seen.toolsChanged > before, 20_000)
  t.ok(await listedSoon(client, (names) => names.includes('remote_echo') && names.includes('local_echo')), 'it comes back')
  t.equal(textOf(await client.callTool({ name: 'remote_echo', arguments: { message: 'back' } })), 'Echo: back')
})
