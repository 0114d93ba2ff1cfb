// The signatures of a module's imported and exported functions, read from the .wasm bytes.
//
// Why not from Wasmtime: its C API aborts the process when asked the kind of a v128 or of a
// GC reference type (wasm_valtype_kind), and the module needs the kinds of the imports it stubs
// and of the callbacks it calls. A .wasm is untrusted input, so it is read here first and a
// module whose boundary uses such a type is refused with a message instead.
#pragma once

#include <string>
#include <string_view>

namespace sywasm {

// OK when every function the module imports or exports takes and returns only i32, i64, f32
// and f64. Otherwise false with *ERR naming the first function that does not, or saying which
// part of the binary could not be read. Call it on bytes Wasmtime has already validated.
bool check_boundary_signatures(std::string_view wasm, std::string* err);

}  // namespace sywasm
