/* Fixture: a correct stamp, but the entry function has the wrong name (an easy mistake when
 * writing the declaration by hand instead of with SY_MODULE_ENTRY). */
#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

__attribute__((visibility("default"))) const sy_module_descriptor_t* sy_module_entry_v0(
    const sy_host_t* host, sy_module_t* module) {
  (void)host;
  (void)module;
  return NULL;
}
