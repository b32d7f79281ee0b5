/** The model errors the agent loop steers by; anything else is a bug and propagates. */

/** The request did not fit the provider's context window; the loop can shrink and retry. */
export class ContextLengthError extends Error {
  override name = 'ContextLengthError'
  readonly provider: string

  constructor(provider: string, message: string) {
    super(`${provider}: the conversation does not fit the model's context window: ${message}`)
    this.provider = provider
  }
}

/** Every provider failed; the message names each provider's last error. */
export class ModelFailure extends Error {
  override name = 'ModelFailure'
}

/** The caller's `AbortSignal` fired while a request was in flight or waiting to retry. */
export class ModelCancelled extends Error {
  override name = 'ModelCancelled'

  constructor() {
    super('the model request was cancelled')
  }
}
