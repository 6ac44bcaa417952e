/**
 * Which member a resource URI belongs to, and how a member's own URI is shown. In order: a URI
 * the merged list showed; a namespace prefix (`<namespace>+<uri>`, reversible); a member's URI
 * template it fits (a template's expansion is listed nowhere); the one member offering resources.
 */
import { GatewayErrors } from '../errors.ts'
import { globMatch } from '../glob.ts'
import { exposedName, prefixed, templateGlob } from './catalog.ts'
import type { MemberLink } from './member-link.ts'
import type { VirtualChannel } from './virtual-channel.ts'

/** Whether the member's resource filter lets this URI (its own form) through. */
function shown (link: MemberLink, own: string): boolean {
  const { include, exclude } = link.spec.filters.resources
  return (include === undefined || include.test(own)) && !exclude.test(own)
}

export async function resolveUri (channel: VirtualChannel, uri: string): Promise<{ link: MemberLink, own: string }> {
  const found = await findUri(channel, uri)
  // Filters hold for URIs nobody listed too: an excluded member's resources stay out of reach.
  if (found === undefined || !shown(found.link, found.own)) throw new GatewayErrors.VIRTUAL_UNKNOWN(channel.server.name, 'resource', uri)
  return found
}

async function findUri (channel: VirtualChannel, uri: string): Promise<{ link: MemberLink, own: string } | undefined> {
  const { links, server } = channel
  const listed = (channel.merged.get('resources') ?? await channel.mergedList('resources')).byExposed.get(uri)
  if (listed !== undefined) return { link: links[listed.member] as MemberLink, own: listed.own }
  if (server.rules.naming !== 'none') {
    for (const link of links) {
      const head = `${link.spec.namespace}+`
      if (uri.startsWith(head)) return { link, own: uri.slice(head.length) }
    }
  }
  const templates = channel.merged.get('resourceTemplates') ?? await channel.mergedList('resourceTemplates')
  for (const entry of templates.byExposed.values()) {
    if (entry.exposed === entry.own && globMatch(templateGlob(entry.own), uri)) return { link: links[entry.member] as MemberLink, own: uri }
  }
  const offering = links.filter((link) => link.init?.capabilities.resources !== undefined)
  if (offering.length === 1) return { link: offering[0] as MemberLink, own: uri }
  return undefined
}

/** A member's own URI as the client sees it (as listed, else namespaced when naming prefixes all). */
export function exposeUri (channel: VirtualChannel, link: MemberLink, own: string): string {
  const listed = exposedName(channel.merged.get('resources'), link.spec.index, own)
  if (listed !== undefined) return listed
  return channel.server.rules.naming === 'prefix' ? prefixed('resources', link.spec.namespace, own, channel.server.rules.separator) : own
}
