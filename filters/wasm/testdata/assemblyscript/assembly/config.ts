// config: keeps the VM configuration from proxy_on_vm_start and the
// plugin configuration (read by the SDK) and shows both on requests.
// A plugin configuration of "reject" fails the configuration with an
// error log; anything else is logged at info.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log, LogLevelValues,
} from "@solo-io/proxy-runtime";
import { BufferTypeValues, get_buffer_bytes } from "@solo-io/proxy-runtime/runtime";
import { utf8 } from "./util";

class ConfigRoot extends RootContext {
  vmConfig: string = "";

  createContext(context_id: u32): Context {
    return new ConfigFilter(context_id, this);
  }

  onStart(vm_configuration_size: usize): bool {
    // Only read a VM configuration that is there: the SDK's own
    // onConfigure passes the configuration's size where the host writes
    // the size it returns, so it finds the buffer only while the size
    // left by the previous call the SDK made (plugin_root_id) is not 0.
    if (vm_configuration_size > 0) {
      this.vmConfig = utf8(get_buffer_bytes(BufferTypeValues.VmConfiguration, 0, vm_configuration_size as u32));
    }
    return true;
  }

  onConfigure(configuration_size: u32): bool {
    if (!super.onConfigure(configuration_size)) {
      return false;
    }
    if (this.getConfiguration() == "reject") {
      log(LogLevelValues.error, "as config: rejected configuration " + this.getConfiguration());
      return false;
    }
    log(LogLevelValues.info, "as config: vm " + this.vmConfig + ", plugin " + this.getConfiguration());
    return true;
  }
}

class ConfigFilter extends Context {
  constructor(context_id: u32, root_context: ConfigRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as ConfigRoot;
    stream_context.headers.request.add("x-as-vm-config", root.vmConfig);
    stream_context.headers.request.add("x-as-plugin-config", root.getConfiguration());
    log(LogLevelValues.warn, "as config: request to " + stream_context.headers.request.get(":path"));
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new ConfigRoot(context_id); }, "config");
