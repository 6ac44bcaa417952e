/**
 * A virtual server as an `Upstream`: a channel upstream whose channels are virtual sessions
 * (virtual-channel.ts), so the endpoint in front of it (sessions, resumable streams, interceptors,
 * auth, WebSocket) is the same as for any other upstream. Its members are upstreams of any kind,
 * built as they would be alone and shared by every virtual session.
 */
import { invalid } from '../options.ts'
import type { Logger } from '../logger.ts'
import { ChannelUpstream } from '../upstream/channel-upstream.ts'
import { createUpstream, type UpstreamOptions } from '../upstream/create.ts'
import { upstreamOptionsOf } from '../upstream/options.ts'
import type { MemberName, Upstream } from '../upstream/types.ts'
import { compileFilter, LIST_KINDS, type CatalogMember, type ListKind } from './catalog.ts'
import { ListCache } from './list-cache.ts'
import type { MemberSpec } from './member-types.ts'
import { FEDERATION_DEFAULTS, NAMESPACE, NAMESPACE_RULE, type VirtualUpstreamOptions } from './options.ts'
import { VirtualChannel } from './virtual-channel.ts'
import { changeMarks, VirtualSessionStates, type SharedState } from './virtual-state.ts'
import type { VirtualServer } from './virtual-server.ts'

const FILTER_OF: Record<ListKind, 'tools' | 'prompts' | 'resources'> = { tools: 'tools', prompts: 'prompts', resources: 'resources', resourceTemplates: 'resources' }
const MAX_MEMBER_BYTES = 64 * 1024 * 1024

/** Members' upstream options, checked for what one member alone cannot see: names and namespaces unique. */
function checkedMembers (options: VirtualUpstreamOptions): Array<{ upstream: UpstreamOptions, namespace: string }> {
  const names = new Map<string, number>()
  const namespaces = new Map<string, number>()
  return options.members.map((member, index) => {
    const upstream = upstreamOptionsOf(member.upstream, `${options.name}-${index + 1}`)
    const at = `upstream.members[${index}]`
    const name = upstream.name
    const namespace = member.namespace ?? name
    if (member.namespace === undefined && !NAMESPACE.test(namespace)) throw invalid(`${at}.namespace`, `is not given, and the upstream's name "${name}" cannot stand for it: it ${NAMESPACE_RULE}`)
    const sameName = names.get(name)
    if (sameName !== undefined) throw invalid(`${at}.upstream.name`, `"${name}" is also members[${sameName}]'s: give each member its own name`)
    const sameSpace = namespaces.get(namespace)
    if (sameSpace !== undefined) throw invalid(`${at}.namespace`, `"${namespace}" is also members[${sameSpace}]'s: give each member its own namespace`)
    names.set(name, index)
    namespaces.set(namespace, index)
    return { upstream, namespace }
  })
}

/** The members, built once the whole list is checked (a stdio member spawns nothing until used). */
function memberSpecs (options: VirtualUpstreamOptions, log: Logger): MemberSpec[] {
  return checkedMembers(options).map(({ upstream, namespace }, index) => {
    const member = options.members[index] as VirtualUpstreamOptions['members'][number]
    return {
      index,
      name: upstream.name,
      server: options.name,
      namespace,
      timeout: member.timeout,
      upstream: createUpstream(upstream, log),
      filters: {
        tools: compileFilter(member.tools),
        prompts: compileFilter(member.prompts),
        resources: compileFilter(member.resources),
        resourceTemplates: compileFilter(member.resources)
      }
    }
  })
}

/** `shared`: the instances' shared store (Redis), where virtual sessions' member sessions are kept. */
export function createVirtualUpstream (options: VirtualUpstreamOptions, log: Logger, shared?: SharedState): Upstream {
  const members = memberSpecs(options, log)
  const catalog = {} as Record<ListKind, CatalogMember[]>
  for (const kind of LIST_KINDS) catalog[kind] = members.map((spec) => ({ index: spec.index, namespace: spec.namespace, filter: spec.filters[FILTER_OF[kind]] }))
  const server: VirtualServer = {
    name: options.name,
    members,
    rules: { naming: options.naming, separator: options.separator },
    catalog,
    cache: new ListCache(options.cacheTtl, shared === undefined ? undefined : changeMarks(shared, options.name)),
    pageSize: options.pageSize,
    retryMs: FEDERATION_DEFAULTS.retryMs,
    maxRetryMs: FEDERATION_DEFAULTS.maxRetryMs,
    maxBytes: MAX_MEMBER_BYTES,
    exposed: { tools: new Map(), prompts: new Map() },
    states: shared === undefined ? undefined : new VirtualSessionStates(shared, options.name)
  }
  return new VirtualUpstream(server, log)
}

/** The channel upstream of virtual sessions, which also owns (probes, closes) its members. */
export class VirtualUpstream extends ChannelUpstream {
  readonly server: VirtualServer

  constructor (server: VirtualServer, log: Logger) {
    super({
      name: server.name,
      kind: 'virtual',
      // A virtual session costs the gateway a little memory; its members keep their own caps.
      maxChannels: Number.MAX_SAFE_INTEGER,
      log,
      open: async (id, principal) => new VirtualChannel(server, log, id, principal),
      // Any instance serves any request of a session: what its members' sessions are is in the store.
      adopt: server.states === undefined
        ? undefined
        : async (id, principal) => {
          const state = await server.states?.load(id)
          return state === undefined ? undefined : new VirtualChannel(server, log, id, principal, state)
        },
      // Ready while some member is: the others are left out of lists until they are back.
      probe: async () => { await Promise.any(server.members.map(async (member) => { await member.upstream.probe() })) },
      release: async (force) => {
        await Promise.all(server.members.map(async (member) => { await (force ? member.upstream.destroy() : member.upstream.close()) }))
      },
      // Each member starts what it keeps ready (stdio members' spare children).
      warm: () => { for (const member of server.members) member.upstream.warm?.() }
    })
    this.server = server
  }

  members (): ReadonlyArray<{ name: string, upstream: Upstream }> {
    return this.server.members
  }

  /**
   * The member behind an exposed tool or prompt name, as the virtual sessions last merged it, or
   * by its namespace prefix when naming prefixes all (a name no session listed yet).
   */
  memberOf (kind: 'tools' | 'prompts', exposed: string): MemberName | undefined {
    const entry = this.server.exposed[kind].get(exposed)
    if (entry !== undefined) return entry
    if (this.server.rules.naming !== 'prefix') return undefined
    for (const member of this.server.members) {
      const head = `${member.namespace}${this.server.rules.separator}`
      if (exposed.startsWith(head)) return { upstream: member.name, name: exposed.slice(head.length) }
    }
    return undefined
  }
}
