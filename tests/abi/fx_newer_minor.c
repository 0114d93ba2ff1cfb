/* Fixture: stamped for one minor past this host's, which the host must refuse before dlopen. */
#include "fixture.h"

FIXTURE_MUST_NOT_BE_LOADED

SY_EXTERN_C __attribute__((section(SY_STAMP_SECTION), used, visibility("default")))
const sy_stamp_t sy_module_stamp = {{'S', 'Y', 'M', 'O', 'D', 'U', 'L', 'E'},
                                    (uint32_t)sizeof(sy_stamp_t),
                                    SY_ABI_MAJOR,
                                    SY_ABI_MINOR + 1,
                                    FIXTURE_NAME,
                                    "1.0.0"};

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  abort();
}
