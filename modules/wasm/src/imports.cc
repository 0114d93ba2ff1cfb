// Builds a plugin's linker: every host function of the table, and for any other function the
// module imports, a stub with the import's own signature (ENOSYS for WASI, UNIMPLEMENTED for
// Proxy-Wasm), since a module fails to instantiate when an import is missing.
#include <set>
#include <string>

#include "hostcall.h"

namespace sywasm {
namespace {

const std::vector<HostDef>& table() {
  static const std::vector<HostDef> defs = [] {
    std::vector<HostDef> d;
    add_env_defs(&d);
    add_callout_defs(&d);
    add_wasi_defs(&d);
    add_grpc_defs(&d);
    add_foreign_defs(&d);
    return d;
  }();
  return defs;
}

wasm_valtype_vec_t types_of(const char* letters) {
  size_t n = strlen(letters);
  wasm_valtype_vec_t v;
  wasm_valtype_vec_new_uninitialized(&v, n);
  for (size_t i = 0; i < n; ++i)
    v.data[i] = wasm_valtype_new(letters[i] == 'I' ? WASM_I64 : WASM_I32);
  return v;
}

wasm_trap_t* trampoline(void* env, wasmtime_caller_t* caller, const wasmtime_val_t* args,
                        size_t /*nargs*/, wasmtime_val_t* results, size_t nresults) {
  const HostDef* def = static_cast<const HostDef*>(env);
  Vm* vm = static_cast<Vm*>(wasmtime_context_get_data(wasmtime_caller_context(caller)));
  int64_t r = def->fn(*vm, args);
  if (vm->pending_trap || vm->failed) {
    vm->pending_trap = false;
    std::string why = vm->fail_reason.empty() ? std::string("host call failed") : vm->fail_reason;
    return wasmtime_trap_new(why.data(), why.size());
  }
  if (nresults) {
    results[0].kind = WASMTIME_I32;
    results[0].of.i32 = int32_t(r);
  }
  return nullptr;
}

// What an import we do not implement answers: ENOSYS (52) for WASI, UNIMPLEMENTED (12) for the
// rest, or nothing for an import with no result.
wasm_trap_t* stub(void* env, wasmtime_caller_t*, const wasmtime_val_t*, size_t,
                  wasmtime_val_t* results, size_t nresults) {
  bool wasi = env != nullptr;
  for (size_t i = 0; i < nresults; ++i) {
    results[i].kind = WASMTIME_I32;
    results[i].of.i32 = i == 0 ? (wasi ? 52 : 12) : 0;
  }
  return nullptr;
}

std::string error_text(wasmtime_error_t* e) {
  wasm_name_t msg;
  wasmtime_error_message(e, &msg);
  std::string s(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(e);
  return s;
}

}  // namespace

bool define_imports(WasmModule* mod, Code* p, std::string* err) {
  p->linker = wasmtime_linker_new(mod->engine);
  std::set<std::pair<std::string, std::string>> defined;
  for (const HostDef& d : table()) {
    wasm_valtype_vec_t params = types_of(d.params), results = types_of(d.results);
    wasm_functype_t* ty = wasm_functype_new(&params, &results);
    wasmtime_error_t* e =
        wasmtime_linker_define_func(p->linker, d.module, strlen(d.module), d.name, strlen(d.name),
                                    ty, trampoline, const_cast<HostDef*>(&d), nullptr);
    wasm_functype_delete(ty);
    if (e) {
      *err = "wasm: cannot define " + std::string(d.name) + ": " + error_text(e);
      return false;
    }
    defined.emplace(d.module, d.name);
  }
  wasm_importtype_vec_t imports;
  wasmtime_module_imports(p->module, &imports);
  bool ok = true;
  for (size_t i = 0; i < imports.size && ok; ++i) {
    const wasm_name_t* m = wasm_importtype_module(imports.data[i]);
    const wasm_name_t* n = wasm_importtype_name(imports.data[i]);
    std::string mod(m->data, m->size), name(n->data, n->size);
    if (defined.count({mod, name})) continue;
    const wasm_externtype_t* et = wasm_importtype_type(imports.data[i]);
    if (wasm_externtype_kind(et) != WASM_EXTERN_FUNC) continue;  // instantiation says why
    const wasm_functype_t* ft = wasm_externtype_as_functype_const(et);
    const wasm_valtype_vec_t* res = wasm_functype_results(ft);
    for (size_t k = 0; k < res->size; ++k) {
      if (wasm_valtype_kind(res->data[k]) != WASM_I32) {
        *err =
            "wasm: the module imports " + mod + "." + name + ", which this host does not provide";
        ok = false;
      }
    }
    if (!ok) break;
    bool wasi = mod.rfind("wasi", 0) == 0;
    if (wasmtime_error_t* e = wasmtime_linker_define_func(
            p->linker, mod.data(), mod.size(), name.data(), name.size(), ft, stub,
            wasi ? reinterpret_cast<void*>(1) : nullptr, nullptr)) {
      *err = "wasm: cannot stub " + mod + "." + name + ": " + error_text(e);
      ok = false;
    }
    defined.emplace(mod, name);
  }
  wasm_importtype_vec_delete(&imports);
  return ok;
}

}  // namespace sywasm
