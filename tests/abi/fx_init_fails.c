/* Fixture: on_load refuses the load with a message. */
#include <string.h>

#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  (void)module_data;
  strcpy(err->message, "fx_init_fails: on_load refused to start (this fixture always does)");
  return false;
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
