/* Fixture: stamped for ABI 2.0, which this host (1.x) must refuse before dlopen. */
#include "fixture.h"

FIXTURE_MUST_NOT_BE_LOADED

/* Written out by hand: SY_MODULE_STAMP always stamps the major of the headers in use. */
SY_EXTERN_C __attribute__((section(SY_STAMP_SECTION), used, visibility("default")))
const sy_stamp_t sy_module_stamp = {{'S', 'Y', 'M', 'O', 'D', 'U', 'L', 'E'},
                                    (uint32_t)sizeof(sy_stamp_t),
                                    SY_ABI_MAJOR + 1,
                                    0,
                                    FIXTURE_NAME,
                                    "1.0.0"};

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  abort(); /* unreachable unless the loader ignored the stamp */
}
