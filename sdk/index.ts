// nmwasm filter SDK, as filter packages import it (AssemblyScript resolves `nmwasm/sdk` to
// node_modules/nmwasm/sdk/index.ts): import { parse, hdr, VERDICT_PASS } from "nmwasm/sdk";
// The sources live in filters/sdk/ (the examples in this repository import them by relative
// path); this file only re-exports them. docs/PACKAGES.md describes filter packages.
export * from "../filters/sdk/index";
