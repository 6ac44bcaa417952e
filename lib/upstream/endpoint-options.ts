/**
 * What an MCP endpoint can stand in front of: one upstream of any kind, or a virtual server over
 * several (federation/options.ts). Kept apart from the upstream kinds' own schemas, which the
 * virtual server's members reuse.
 */
import { httpUrl, z } from '../options.ts'
import { virtualUpstreamSchema } from '../federation/options.ts'
import { httpUpstreamSchema, namedShape, sseUpstreamSchema, stdioUpstreamSchema } from './options.ts'

const ENDPOINT_UPSTREAM_MESSAGE = 'must be a URL string or an object with a url (or a command, for kind "stdio"; members, for kind "virtual")'

/** Upstream options as a user writes them: a URL string or an object of one `kind`. */
export const endpointUpstreamSchema = z.union([
  httpUrl().meta({ description: 'A Streamable HTTP endpoint URL.' }),
  z.discriminatedUnion('kind', [httpUpstreamSchema, stdioUpstreamSchema, sseUpstreamSchema, virtualUpstreamSchema])
], { error: ENDPOINT_UPSTREAM_MESSAGE })

/** One of several upstreams: named, each on its own path. */
export const namedUpstreamSchema = z.discriminatedUnion('kind', [
  httpUpstreamSchema.extend(namedShape).meta({ id: 'namedHttpUpstream', description: 'A Streamable HTTP upstream.' }),
  stdioUpstreamSchema.extend(namedShape).meta({ id: 'namedStdioUpstream', description: 'A stdio upstream: a program speaking MCP on stdin/stdout, one process per session by default.' }),
  sseUpstreamSchema.extend(namedShape).meta({ id: 'namedSseUpstream', description: 'A legacy HTTP+SSE upstream (protocol 2024-11-05).' }),
  virtualUpstreamSchema.extend(namedShape).meta({ id: 'namedVirtualUpstream', description: 'A virtual server: several upstreams behind one MCP endpoint.' })
])

export type EndpointUpstreamInput = z.input<typeof endpointUpstreamSchema>
export type NamedUpstreamInput = z.input<typeof namedUpstreamSchema>
