/* Fixture: a correct entry, but on_load never returns (it waits for a signal that never comes).
 * The loader's child-process preflight runs on_load first and gives up on it after its timeout,
 * so the proxy refuses the module without ever running it itself. */
#include <unistd.h>

#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  (void)module_data;
  (void)err;
  for (;;) pause();
  return true;
}

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = FIXTURE_NAME,
    .version = "1.0.0",
    .on_load = on_load,
};

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  return &kDescriptor;
}
