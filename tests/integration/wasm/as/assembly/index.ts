// Two root contexts in one module, chosen by the plugin's root_id (the runtime asks the host
// for the property plugin_root_id to pick one):
//   add_header  every response gets hello: world!, or hello: <plugin configuration> when
//               there is one; every request going upstream gets x-as-method: <its :method>.
//   deny_path   a request whose :path is the plugin configuration gets a local 403 with the
//               body "denied by assemblyscript\n" and header x-as-denied: 1; others go on.
//   auth        every request is held while GET <its :path> goes to the cluster "httpbin"; a
//               200 answer lets it go on, any other gets a local 403 "denied by callout\n".
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
  send_local_response, GrpcStatusValues, Headers, HeaderPair, WasmResultValues, continue_request
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes, BufferTypeValues } from "@solo-io/proxy-runtime/runtime";

// proxy-runtime 0.1.8 (the newest this registry has) reads the plugin configuration in its own
// onConfigure with the configuration's size where the result's size pointer belongs: it traps
// on an empty configuration and writes to a stray address otherwise. This reads it properly.
class ConfiguredRoot extends RootContext {
  config: string = "";
  onConfigure(configuration_size: u32): bool {
    this.config = configuration_size == 0 ? "" : String.UTF8.decode(
      get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size));
    return true;
  }
}

class AddHeaderRoot extends ConfiguredRoot {
  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  constructor(context_id: u32, root_context: AddHeaderRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.request.add("x-as-method", stream_context.headers.request.get(":method"));
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const config = (this.root_context as ConfiguredRoot).config;
    stream_context.headers.response.add("hello", config == "" ? "world!" : config);
    return FilterHeadersStatusValues.Continue;
  }
}

class DenyPathRoot extends ConfiguredRoot {
  createContext(context_id: u32): Context {
    return new DenyPath(context_id, this);
  }
}

class DenyPath extends Context {
  constructor(context_id: u32, root_context: DenyPathRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get(":path") != (this.root_context as ConfiguredRoot).config) {
      return FilterHeadersStatusValues.Continue;
    }
    const headers: Headers = [];
    headers.push(new HeaderPair(String.UTF8.encode("x-as-denied"), String.UTF8.encode("1")));
    send_local_response(403, "denied by assemblyscript", String.UTF8.encode("denied by assemblyscript\n"),
      headers, GrpcStatusValues.InvalidCode);
    return FilterHeadersStatusValues.StopIteration;
  }
}

class AuthRoot extends ConfiguredRoot {
  createContext(context_id: u32): Context {
    return new Auth(context_id, this);
  }
}

function pair(name: string, value: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(name), String.UTF8.encode(value));
}

class Auth extends Context {
  constructor(context_id: u32, root_context: AuthRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const headers: Headers = [];
    headers.push(pair(":method", "GET"));
    headers.push(pair(":path", stream_context.headers.request.get(":path")));
    headers.push(pair(":authority", "httpbin"));
    const result = this.root_context.httpCall("httpbin", headers, new ArrayBuffer(0), [], 5000, this,
      (origin: Context, headers: u32, body_size: usize, trailers: u32): void => {
        // The runtime has made the held stream the effective context already.
        if (stream_context.headers.http_callback.get(":status") == "200") {
          continue_request();
          return;
        }
        send_local_response(403, "denied by callout", String.UTF8.encode("denied by callout\n"), [],
          GrpcStatusValues.InvalidCode);
      });
    if (result != WasmResultValues.Ok) {
      send_local_response(500, "callout failed", String.UTF8.encode("callout failed\n"), [],
        GrpcStatusValues.InvalidCode);
    }
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new AddHeaderRoot(context_id); }, "add_header");
registerRootContext((context_id: u32) => { return new AuthRoot(context_id); }, "auth");
registerRootContext((context_id: u32) => { return new DenyPathRoot(context_id); }, "deny_path");
