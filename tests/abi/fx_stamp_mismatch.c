/* Fixture: the stamp says version 1.0.0, the descriptor says 6.6.6. The loader can only see this
 * after calling the entry, and must refuse the module then. */
#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = FIXTURE_NAME,
    .version = "6.6.6",
};

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  return &kDescriptor;
}
