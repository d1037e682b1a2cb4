// Proxy-Wasm test plugins written with the AssemblyScript SDK
// (@solo-io/proxy-runtime). One module holds them all: each file
// registers its root context under its own root_id, and the plugin
// config's root_id picks one, so a single asc run builds every plugin.
export * from "@solo-io/proxy-runtime/proxy";

import "./headers";
import "./body";
import "./local";
import "./callout";
import "./tick";
import "./shared";
import "./queue";
import "./metrics";
import "./properties";
import "./config";
import "./crash";
import "./noop";
