import { randomBytes } from 'node:crypto'

/** 192 random bits as base64url: visible ASCII only, as the spec requires of session ids. */
export function newSessionId (): string {
  return randomBytes(24).toString('base64url')
}

/** Gateway ids are 32 base64url characters; anything else cannot be one of ours. */
const SESSION_ID_SYNTAX = /^[A-Za-z0-9_-]{32}$/

export function isWellFormedSessionId (value: string): boolean {
  return SESSION_ID_SYNTAX.test(value)
}
