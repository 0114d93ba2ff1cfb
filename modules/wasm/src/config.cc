// Parses the wasm filter config with Envoy's field names (envoy.extensions.wasm.v3.PluginConfig).
#include "config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <switchyard/json.hpp>

namespace sywasm {

// The config arrives as JSON text; the SDK's reader reads it.
namespace json = sy::sdk::json;

namespace {

bool unknown_keys(const json::Value& obj, std::initializer_list<std::string_view> known,
                  const std::string& where, std::string* err) {
  for (const auto& [k, v] : obj.obj) {
    bool ok = false;
    for (auto name : known) ok = ok || k == name;
    if (!ok) {
      std::string list;
      for (auto name : known) list += (list.empty() ? "" : ", ") + std::string(name);
      *err = "wasm: unknown key '" + k + "' in " + where + " (known: " + list + ")";
      return true;
    }
  }
  return false;
}

bool want_object(const json::Value* j, const std::string& where, std::string* err) {
  if (j->kind == json::Value::Object) return true;
  *err = "wasm: '" + where + "' must be an object";
  return false;
}

bool take_string(const json::Value& obj, std::string_view key, std::string* out,
                 const std::string& where, std::string* err) {
  const json::Value* j = obj.find(key);
  if (!j) return true;
  if (j->kind != json::Value::String) {
    *err = "wasm: '" + where + "." + std::string(key) + "' must be a string";
    return false;
  }
  *out = j->str;
  return true;
}

// Envoy's `configuration` is a google.protobuf.Any; the wasm plugin sees the StringValue's text
// (or BytesValue's bytes). Users also write a plain string, or an object we pass on as JSON.
bool take_configuration(const json::Value& obj, std::string* out, const std::string& where,
                        std::string* err) {
  const json::Value* j = obj.find("configuration");
  if (!j) return true;
  if (j->kind == json::Value::String) {
    *out = j->str;
  } else if (j->kind == json::Value::Object && j->find("@type")) {
    const json::Value* v = j->find("value");
    if (!v) {
      *out = "";
    } else if (v->kind == json::Value::String) {
      *out = v->str;
    } else {
      out->clear();
      json::write(*v, out);
    }
  } else if (j->kind == json::Value::Object) {
    out->clear();
    json::write(*j, out);
  } else {
    *err = "wasm: '" + where +
           ".configuration' must be a string or an Any "
           "({\"@type\": \"type.googleapis.com/google.protobuf.StringValue\", value: \"...\"})";
    return false;
  }
  return true;
}

bool base64_decode(std::string_view in, std::string* out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    int v = val(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(char((acc >> bits) & 0xFF));
    }
  }
  return true;
}

bool read_code(const json::Value& vm, PluginConfig* c, std::string* err) {
  const json::Value* code = vm.find("code");
  if (!code || code->kind != json::Value::Object || !code->find("local")) {
    *err =
        "wasm: 'vm_config.code.local' is required (filename, inline_bytes or inline_string); "
        "remote code is not supported";
    return false;
  }
  const json::Value* local = code->find("local");
  if (!want_object(local, "vm_config.code.local", err)) return false;
  if (unknown_keys(*local, {"filename", "inline_bytes", "inline_string"}, "vm_config.code.local",
                   err))
    return false;
  std::string filename, bytes, str;
  if (!take_string(*local, "filename", &filename, "vm_config.code.local", err) ||
      !take_string(*local, "inline_bytes", &bytes, "vm_config.code.local", err) ||
      !take_string(*local, "inline_string", &str, "vm_config.code.local", err))
    return false;
  if (!filename.empty()) {
    std::ifstream f(filename, std::ios::binary);
    if (!f) {
      *err = "wasm: cannot read vm_config.code.local.filename '" + filename + "'";
      return false;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    c->code = ss.str();
    c->code_path = filename;
  } else if (!bytes.empty()) {
    // A text of padding only ("=b", "==") decodes to no bytes at all: refused here, with the
    // key named, rather than later as a module Wasmtime cannot compile.
    if (!base64_decode(bytes, &c->code) || c->code.empty()) {
      *err = "wasm: vm_config.code.local.inline_bytes is not base64";
      return false;
    }
  } else if (!str.empty()) {
    c->code = str;
  } else {
    *err = "wasm: vm_config.code.local needs one of filename, inline_bytes, inline_string";
    return false;
  }
  return true;
}

bool read_env(const json::Value& vm, PluginConfig* c, std::string* err) {
  const json::Value* env = vm.find("environment_variables");
  if (!env) return true;
  if (!want_object(env, "vm_config.environment_variables", err)) return false;
  if (unknown_keys(*env, {"host_env_keys", "key_values"}, "vm_config.environment_variables", err))
    return false;
  if (const json::Value* keys = env->find("host_env_keys")) {
    if (keys->kind != json::Value::Array) {
      *err = "wasm: 'vm_config.environment_variables.host_env_keys' must be a list of names";
      return false;
    }
    for (const json::Value& k : keys->arr) {
      if (k.kind != json::Value::String) {
        *err = "wasm: 'host_env_keys' entries must be strings";
        return false;
      }
      if (const char* v = getenv(k.str.c_str())) c->env.emplace_back(k.str, v);
    }
  }
  if (const json::Value* kv = env->find("key_values")) {
    if (!want_object(kv, "vm_config.environment_variables.key_values", err)) return false;
    for (const auto& [k, v] : kv->obj) {
      if (v.kind != json::Value::String) {
        *err = "wasm: 'key_values." + k + "' must be a string";
        return false;
      }
      c->env.emplace_back(k, v.str);
    }
  }
  return true;
}

bool read_uint(const json::Value& obj, std::string_view key, uint64_t min, uint64_t max,
               uint64_t* out, std::string* err) {
  const json::Value* j = obj.find(key);
  if (!j) return true;
  char* end = nullptr;
  unsigned long long v = j->kind == json::Value::Number ? strtoull(j->str.c_str(), &end, 10) : 0;
  if (j->kind != json::Value::Number || *end || v < min || v > max) {
    *err = "wasm: '" + std::string(key) + "' must be an integer in [" + std::to_string(min) + ", " +
           std::to_string(max) + "]";
    return false;
  }
  *out = v;
  return true;
}

}  // namespace

const char* failure_policy_name(FailurePolicy p) {
  switch (p) {
    case FailurePolicy::kFailOpen:
      return "FAIL_OPEN";
    case FailurePolicy::kFailReload:
      return "FAIL_RELOAD";
    default:
      return "FAIL_CLOSED";
  }
}

bool parse_plugin_config(std::string_view text, PluginConfig* c, std::string* err) {
  json::Value root;
  if (!json::parse(text, &root, err)) {
    *err = "wasm: config is not valid JSON: " + *err;
    return false;
  }
  if (!want_object(&root, "config", err)) return false;
  // Envoy's `envoy.extensions.filters.http.wasm.v3.Wasm` wraps the PluginConfig in `config`.
  const json::Value* pc = &root;
  if (root.obj.size() == 1 && root.find("config")) pc = root.find("config");
  if (!want_object(pc, "config", err)) return false;
  if (unknown_keys(*pc,
                   {"name", "root_id", "vm_config", "configuration", "failure_policy", "fail_open",
                    "capability_restriction_config", "callback_deadline_ms", "memory_limit_mb",
                    "cache_dir", "watch"},
                   "config", err))
    return false;
  if (!take_string(*pc, "name", &c->name, "config", err) ||
      !take_string(*pc, "root_id", &c->root_id, "config", err) ||
      !take_configuration(*pc, &c->plugin_configuration, "config", err) ||
      !take_string(*pc, "cache_dir", &c->cache_dir, "config", err))
    return false;
  std::string policy = "FAIL_CLOSED";
  if (!take_string(*pc, "failure_policy", &policy, "config", err)) return false;
  if (const json::Value* fo = pc->find("fail_open"); fo && fo->kind == json::Value::Bool && fo->b)
    policy = "FAIL_OPEN";  // Envoy's deprecated boolean
  if (policy == "FAIL_CLOSED" || policy == "UNSPECIFIED") {
    c->failure_policy = FailurePolicy::kFailClosed;
  } else if (policy == "FAIL_OPEN") {
    c->failure_policy = FailurePolicy::kFailOpen;
  } else if (policy == "FAIL_RELOAD") {
    c->failure_policy = FailurePolicy::kFailReload;
  } else {
    *err = "wasm: 'failure_policy' must be FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD, got '" + policy +
           "'";
    return false;
  }
  if (const json::Value* w = pc->find("watch")) {
    if (w->kind != json::Value::Bool) {
      *err = "wasm: 'watch' must be true or false";
      return false;
    }
    c->watch = w->b;
  }
  uint64_t mb = c->memory_limit_bytes >> 20;
  if (!read_uint(*pc, "callback_deadline_ms", 1, 600000, &c->callback_deadline_ms, err) ||
      !read_uint(*pc, "memory_limit_mb", 1, 4096, &mb, err))
    return false;
  c->memory_limit_bytes = mb << 20;

  const json::Value* vm = pc->find("vm_config");
  if (!vm) {
    *err = "wasm: 'vm_config' is required (with code.local.filename)";
    return false;
  }
  if (!want_object(vm, "vm_config", err)) return false;
  if (unknown_keys(*vm,
                   {"vm_id", "runtime", "code", "configuration", "allow_precompiled",
                    "nack_on_code_cache_miss", "environment_variables"},
                   "vm_config", err))
    return false;
  if (!take_string(*vm, "vm_id", &c->vm_id, "vm_config", err) ||
      !take_string(*vm, "runtime", &c->runtime, "vm_config", err) ||
      !take_configuration(*vm, &c->vm_configuration, "vm_config", err))
    return false;
  if (!c->runtime.empty() && c->runtime.rfind("envoy.wasm.runtime.", 0) != 0) {
    *err =
        "wasm: 'vm_config.runtime' must be an envoy.wasm.runtime.* name (all run on "
        "Wasmtime), got '" +
        c->runtime + "'";
    return false;
  }
  if (!read_code(*vm, c, err) || !read_env(*vm, c, err)) return false;
  if (c->watch && c->code_path.empty()) {
    *err = "wasm: 'watch: true' needs vm_config.code.local.filename (there is no file to watch)";
    return false;
  }
  return true;
}

}  // namespace sywasm
