/* Fixture: its entry function dereferences a null pointer (a real SIGSEGV). The loader must find
 * this out in a child process and never run the entry in the proxy. */
#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

/* volatile, so the compiler cannot see that it is null and drop or replace the store. */
static int* volatile nowhere;

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  *nowhere = 1;
  return NULL;
}
