/* Fixture: a module with an entry function but no stamp section. */
#include "fixture.h"

FIXTURE_MUST_NOT_BE_LOADED

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  abort();
}
