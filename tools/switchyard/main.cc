// switchyard: command line, config validation, and start-up.
#include <switchyard/module.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config/config.h"
#include "core/log/log.h"
#include "core/runtime/runtime.h"
#include "core/server/server.h"
#include "loader/crash_handler.h"
#include "loader/manager.h"

namespace {

const char kUsage[] =
    "usage: switchyard -c FILE [--validate] [--log-level LEVEL]\n"
    "       switchyard --version\n"
    "\n"
    "  -c, --config FILE   the YAML config to run\n"
    "  --validate          check the config and exit: 0 when good, 1 with the errors\n"
    "  --log-level LEVEL   trace, debug, info (default), warn, error, off\n"
    "  --version           print the proxy version and exit\n";

// The state directory (crash records, copies of good module generations, private copies):
// the config's state_dir, or one per user under $TMPDIR. It must outlive the process, so that
// the next start knows which module generation crashed this one.
std::string state_dir_of(const sy::config::Config& cfg) {
  if (!cfg.state_dir.empty()) return cfg.state_dir;
  const char* tmp = getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/switchyard-state-" + std::to_string(getuid());
}

int print_errors(const std::vector<sy::config::Error>& errors) {
  for (const auto& e : errors) fprintf(stderr, "%s\n", e.str().c_str());
  fprintf(stderr, "%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_file;
  bool validate = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a == "--validate") {
      validate = true;
    } else if (a == "--version") {
      printf("switchyard %s (module ABI %d.%d)\n", SY_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR);
      return 0;
    } else if (a == "--log-level" && i + 1 < argc) {
      sy::log::Level l;
      if (!sy::log::parse_level(argv[++i], &l)) {
        fprintf(stderr, "switchyard: unknown log level '%s'\n%s", argv[i], kUsage);
        return 2;
      }
      sy::log::set_level(l);
    } else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else {
      fprintf(stderr, "switchyard: unexpected argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_file.empty()) {
    fputs(kUsage, stderr);
    return 2;
  }

  auto loaded = sy::config::load_file(config_file);
  if (!loaded.errors.empty()) return print_errors(loaded.errors);

  // Before any module code runs: a crash in it is then reported and recorded.
  sy::loader::install_crash_handler();
  std::string state_dir = state_dir_of(*loaded.config);
  int rc;
  if (validate) {
    // Compile what the parser cannot check on its own (regexes, endpoints) and load every
    // module with its config, without starting anything.
    std::vector<sy::config::Error> errors;
    auto cfg = std::make_shared<sy::config::Config>(*loaded.config);
    cfg->access_log.path.clear();  // validation must not create files
    {
      sy::loader::Manager modules(state_dir);
      modules.begin(*cfg);
      auto rt = sy::server::Runtime::build(cfg, nullptr, &errors, &modules);
      modules.abort();
      rc = rt ? 0 : print_errors(errors);
    }
    if (rc == 0) printf("%s: configuration is valid\n", config_file.c_str());
  } else {
    sy::loader::Manager modules(state_dir);
    sy::server::Server server(config_file, &modules);
    rc = server.run(loaded.config);
  }
  return rc;
}
