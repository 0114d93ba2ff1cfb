/* What the load-failure fixtures share: the name they are stamped with and a guard that proves
 * a refused module never ran a line of its code. */
#ifndef SY_TESTS_ABI_FIXTURE_H
#define SY_TESTS_ABI_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <switchyard/module.h>

/* The load-failure fixtures all claim to be module "fixture", so that each can be offered as a
 * new generation of a running fx_good (POST /modules/fixture/reload). */
#define FIXTURE_NAME "fixture"

/* For fixtures the loader must refuse from the stamp alone, before dlopen: if their static
 * constructors ever run, the proxy aborts and the test sees it. */
#define FIXTURE_MUST_NOT_BE_LOADED                                                         \
  __attribute__((constructor)) static void fixture_must_not_run(void) {                    \
    fputs("fixture: the loader dlopened a module it should have refused from its stamp\n", \
          stderr);                                                                         \
    abort();                                                                               \
  }

#endif /* SY_TESTS_ABI_FIXTURE_H */
