// nmwasm filter SDK (AssemblyScript). Import everything from here:
//   import { parse, hdr, VERDICT_PASS, ... } from "../../sdk";
// Every filter's entry file must also `export { nmwasm_abi_v1 } from "../../sdk";`
// and define its own nmwasm_process loop (see the examples); the loop over the batch
// runs in wasm, one host call per batch.
// NB: no closures or indirect calls on the per-packet path; each call through a
// function reference costs more than a whole simple filter.
export * from "./abi";
export * from "./log";
export * from "./packet";
export * from "./parse";
export * from "./config";
export * from "./stats";

/** ABI v1 marker export; never called. Re-export it from the filter's entry file. */
export function nmwasm_abi_v1(): void {}
