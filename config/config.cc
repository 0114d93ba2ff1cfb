// Loads a config file: YAML syntax, the top-level sections, and the checks that span sections.
#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "config/schema.h"
#include "config/yaml_json.h"
#include "config/yaml_util.h"

namespace sy::config {

std::string Location::str() const {
  // Errors about the file as a whole (unreadable, empty) have no position to show.
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

std::string Address::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string Error::str() const { return loc.str() + ": " + message; }

const Cluster* Config::find_cluster(std::string_view name) const {
  for (const Cluster& c : clusters)
    if (c.name == name) return &c;
  return nullptr;
}

void check_unique(Diagnostics& d, const std::vector<NameAt>& names, const std::string& kind) {
  std::map<std::string, const NameAt*> first;
  for (const NameAt& n : names) {
    if (n.name.empty()) continue;  // a missing name was reported already
    auto [it, inserted] = first.emplace(n.name, &n);
    if (!inserted) {
      const Location& prev = it->second->loc;
      d.error(n.loc, "duplicate " + kind + " name '" + n.name + "' (first defined at line " +
                         std::to_string(prev.line) + ")");
    }
  }
}

namespace {

// Walks the documents of a YAML text without building them, to find where yaml-cpp 0.7 would
// loop: on a token that cannot start a node where a document should start (a stray ',' at the
// top level), its parser reports an empty document without consuming the token, again and again,
// and LoadAll() never returns while its memory grows (jbeder/yaml-cpp#1040, found by the config
// fuzzer). A document that starts where the previous one did is that loop.
class StuckDocumentFinder : public YAML::EventHandler {
 public:
  // True, with *AT set, when parsing TEXT would not end.
  static bool find(const std::string& text, YAML::Mark* at) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    StuckDocumentFinder f;
    while (parser.HandleNextDocument(f)) {
      if (f.stuck_) {
        *at = f.last_;
        return true;
      }
    }
    return false;
  }

  void OnDocumentStart(const YAML::Mark& m) override {
    if (started_ && m.pos == last_.pos) stuck_ = true;
    started_ = true;
    last_ = m;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  bool started_ = false;
  bool stuck_ = false;
  YAML::Mark last_;
};

Module parse_module(Diagnostics& d, const YAML::Node& n) {
  Module m;
  m.loc = d.at(n);
  Fields f(d, n, m.loc, "module", {"name", "path", "sha256", "watch", "config"});
  if (!f.is_map()) return m;
  f.string("name", &m.name, /*required=*/true);
  f.string("path", &m.path);
  if (f.string("sha256", &m.sha256)) {
    bool hex = m.sha256.size() == 64;
    for (char& c : m.sha256) {
      hex = hex && std::isxdigit(static_cast<unsigned char>(c));
      c = char(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!hex)
      d.error(value_loc(d, *f.find("sha256")),
              "sha256 in module: expected 64 hexadecimal digits (the output of sha256sum)");
  }
  f.boolean("watch", &m.watch);
  // An empty `config:` is the same as none, as for a filter's.
  const MapEntry* c = f.find("config");
  if (c != nullptr && !c->value.IsNull()) {
    std::string json;
    if (yaml_to_json(d, c->value, "config in module", &json)) m.config_json = std::move(json);
  }
  return m;
}

void parse_top(ParseContext& ctx, const YAML::Node& root, Config* cfg) {
  Diagnostics& d = ctx.d;
  Fields f(d, root, d.at(root), "config",
           {"admin", "workers", "module_path", "module_preflight_at_start", "modules", "state_dir",
            "on_module_crash", "listeners", "clusters", "access_log", "overload", "node"});
  if (!f.is_map()) return;

  if (const MapEntry* e = f.find("admin")) {
    Fields a(d, e->value, value_loc(d, *e), "admin", {"address"});
    // Port 0 lets tests run an admin endpoint on whatever port is free.
    a.address("address", &cfg->admin.address, /*required=*/false, /*allow_port_zero=*/true);
  }
  f.uint32("workers", &cfg->workers, 0, kMaxWorkers);
  f.string_list("module_path", &cfg->module_path);
  f.boolean("module_preflight_at_start", &cfg->module_preflight_at_start);
  f.string("state_dir", &cfg->state_dir);
  std::string on_crash;
  if (f.string("on_module_crash", &on_crash)) {
    if (on_crash == "previous") {
      cfg->on_module_crash = OnModuleCrash::kPrevious;
    } else if (on_crash == "refuse") {
      cfg->on_module_crash = OnModuleCrash::kRefuse;
    } else {
      d.error(value_loc(d, *f.find("on_module_crash")),
              "on_module_crash: expected previous or refuse, got '" + on_crash + "'");
    }
  }

  if (const MapEntry* e = f.list("modules")) {
    std::vector<NameAt> names;
    for (const YAML::Node& item : e->value) {
      cfg->modules.push_back(parse_module(d, item));
      names.push_back({cfg->modules.back().name, cfg->modules.back().loc});
    }
    check_unique(d, names, "module");
  }

  if (const MapEntry* e = f.list("clusters")) {
    std::vector<NameAt> names;
    for (const YAML::Node& item : e->value) {
      NameAt name;
      cfg->clusters.push_back(parse_cluster(ctx, item, d.at(item), &name));
      names.push_back(std::move(name));
    }
    check_unique(d, names, "cluster");
  }

  if (const MapEntry* e = f.list("listeners")) {
    std::vector<NameAt> names;
    for (const YAML::Node& item : e->value) {
      NameAt name;
      cfg->listeners.push_back(parse_listener(ctx, item, d.at(item), &name));
      names.push_back(std::move(name));
    }
    check_unique(d, names, "listener");
  }

  if (const MapEntry* e = f.find("access_log")) {
    Fields a(d, e->value, value_loc(d, *e), "access_log", {"path", "fields"});
    a.string("path", &cfg->access_log.path, false, /*allow_empty=*/true);
    if (const MapEntry* fields = a.find("fields"))
      parse_access_log_fields(d, *fields, &cfg->access_log.fields);
  }

  if (const MapEntry* e = f.find("overload")) {
    Fields o(d, e->value, value_loc(d, *e), "overload",
             {"max_downstream_connections", "max_buffered_bytes"});
    o.uint32("max_downstream_connections", &cfg->overload.max_downstream_connections);
    o.size64("max_buffered_bytes", &cfg->overload.max_buffered_bytes);
  }

  if (const MapEntry* e = f.find("node")) {
    Fields n(d, e->value, value_loc(d, *e), "node", {"id", "cluster"});
    n.string("id", &cfg->node.id);
    n.string("cluster", &cfg->node.cluster);
  }

  for (const NameAt& ref : ctx.cluster_refs) {
    if (cfg->find_cluster(ref.name) == nullptr)
      d.error(ref.loc, "unknown cluster '" + ref.name + "'; define it under clusters:");
  }
}

}  // namespace

LoadResult load_string(const std::string& text, const std::string& file) {
  Diagnostics d(file);
  auto cfg = std::make_shared<Config>();
  cfg->file = file;
  cfg->yaml = text;
  try {
    YAML::Mark stuck;
    if (StuckDocumentFinder::find(text, &stuck)) {
      std::string token = stuck.pos >= 0 && size_t(stuck.pos) < text.size()
                              ? std::string(1, text[size_t(stuck.pos)])
                              : std::string("text");
      d.error(d.at(stuck),
              "unexpected '" + token + "'; expected a map with listeners, clusters, ...");
      LoadResult result;
      result.errors = d.take();
      return result;
    }
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) {
      d.error(Location{file, 0, 0},
              "the config is empty; expected a map with listeners, clusters, ...");
    } else if (docs.size() > 1) {
      d.error(d.at(docs[1]), "expected one YAML document, found " + std::to_string(docs.size()));
    } else {
      ParseContext ctx{d, {}};
      parse_top(ctx, docs[0], cfg.get());
    }
  } catch (const YAML::DeepRecursion&) {
    // yaml-cpp 0.7 gives this one a misleading message ("bad file") and no useful position.
    d.error(Location{file, 0, 0}, "YAML nested too deeply");
  } catch (const YAML::Exception& e) {
    d.error(d.at(e.mark), e.msg);
  } catch (const std::exception& e) {
    d.error(Location{file, 0, 0}, std::string("cannot parse: ") + e.what());
  } catch (...) {
    d.error(Location{file, 0, 0}, "cannot parse: unknown error");
  }
  LoadResult result;
  result.errors = d.take();
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

LoadResult load_file(const std::string& file) {
  // POSIX reads rather than iostreams: they report a directory or a permission problem as
  // such, and the message should say why the file could not be read.
  std::string text;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        text.append(buf, size_t(n));
      } else if (n == 0) {
        break;
      } else if (errno != EINTR) {
        err = errno;
        break;
      }
    }
    ::close(fd);
  }
  if (err != 0) {
    LoadResult result;
    result.errors.push_back(Error{
        Location{file, 0, 0}, std::string("cannot read the config file: ") + std::strerror(err)});
    return result;
  }
  return load_string(text, file);
}

}  // namespace sy::config
