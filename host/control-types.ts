// The hot-swap request and result shared by the control socket (host/control*.ts) and the
// engine (host/engine.ts Engine.swap, host/swap.ts). Plain data: it crosses the socket as JSON.

/** `nmwasm swap NAME MODULE [--clause N] [--module N] [--config FILE]` as the client sends it. */
export interface SwapRequest {
  module: string; // path (or package) of the new module
  config?: string; // path of its --config file (default: the clause's current config)
  clause?: number; // 0-based clause of the host (default 0)
  module_index?: number; // 0-based module of the clause's chain (default 0)
}

/** What a swap did. ok false: the old module still serves; `reason` says why (one line). */
export interface SwapResult {
  ok: boolean;
  reason?: string;
  canary?: { packets: number; faults: number };
  /** Longest stall of a ring at the switch (µs; compile and canary excluded). */
  stallUs?: number;
  /** Whether the old instance's state (nmwasm_state_save) reached the new one on every ring. */
  stateCarried?: boolean;
}
