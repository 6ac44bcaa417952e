/** Peers of the upstream identity tests: the authorization server's clients, and MCP clients with a bearer token. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { ClientMetadata } from 'oidc-provider'
import { TOKEN_EXCHANGE } from './oidc.ts'

interface Teardown {
  teardown (fn: () => unknown): void
}

/** The audience of the gateway's own inbound tokens. */
export const GATEWAY_RESOURCE = 'https://gateway.test/mcp'

/** The gateway as a confidential client of the authorization server, for every mode. */
export function gatewayClient (callbackUrl = 'http://127.0.0.1:9/oauth/callback'): ClientMetadata {
  return {
    client_id: 'gateway',
    client_secret: 'gateway-secret-0123456789',
    grant_types: ['client_credentials', TOKEN_EXCHANGE, 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [callbackUrl],
    token_endpoint_auth_method: 'client_secret_basic'
  }
}

export function jwtAuth (issuer: string): { jwt: { jwksUrl: string, issuer: string, audience: string } } {
  return { jwt: { jwksUrl: `${issuer}/jwks`, issuer, audience: GATEWAY_RESOURCE } }
}

/** A 1.x SDK client (2025-11-25) sending `token` as its bearer token. */
export async function legacyClient (t: Teardown, url: string, token: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  const client = new Client({ name: 'identity-test', version: '1.0.0' }, { capabilities })
  await client.connect(transport)
  t.teardown(() => client.close())
  return client
}
