// Stats registry and its text and Prometheus renderings.
#include "core/stats/stats.h"

#include <cstdio>

namespace sy::stats {

void Histogram::record(double ms) {
  size_t i = 0;
  while (i < kBounds.size() && ms > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(uint64_t(ms * 1000.0), std::memory_order_relaxed);
}

double Histogram::quantile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  uint64_t want = uint64_t(q * double(total) + 0.5);
  if (want == 0) want = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += bucket(i);
    if (seen >= want) return i < kBounds.size() ? kBounds[i] : kBounds.back();
  }
  return kBounds.back();
}

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Prometheus names allow [a-zA-Z0-9_:]; anything else in a family name becomes '_'.
std::string prom_name(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == ':'))
      c = '_';
  return out;
}

std::string fmt_double(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Registry::Entry& Registry::entry(Type type, const std::string& kind, const Labels& labels,
                                 const std::string& name) {
  std::string text = kind;
  std::string lab;
  // The reserved label __name__ (Prometheus's own name for the metric name) names the
  // Prometheus family outright and is neither a label nor part of the text name: a module that
  // mirrors another proxy's metric names (the wasm module, Envoy's) sets it.
  const std::string* own_family = nullptr;
  for (const auto& [k, v] : labels) {
    if (k == "__name__") {
      own_family = &v;
      continue;
    }
    text += "." + v;
    lab += (lab.empty() ? "" : ",") + k + "=\"" + escape_label(v) + "\"";
  }
  text += "." + name;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = entries_.try_emplace(text);
  Entry& e = it->second;
  if (inserted) {
    e.type = type;
    e.family = prom_name(own_family ? *own_family : "switchyard_" + kind + "_" + name);
    e.labels = lab.empty() ? "" : "{" + lab + "}";
    if (type == Type::kCounter) e.counter = std::make_unique<Counter>();
    if (type == Type::kGauge) e.gauge = std::make_unique<Gauge>();
    if (type == Type::kHistogram) e.histogram = std::make_unique<Histogram>();
  }
  return e;
}

Counter* Registry::counter(const std::string& kind, const Labels& labels, const std::string& name) {
  return entry(Type::kCounter, kind, labels, name).counter.get();
}
Gauge* Registry::gauge(const std::string& kind, const Labels& labels, const std::string& name) {
  return entry(Type::kGauge, kind, labels, name).gauge.get();
}
Histogram* Registry::histogram(const std::string& kind, const Labels& labels,
                               const std::string& name) {
  return entry(Type::kHistogram, kind, labels, name).histogram.get();
}

std::string Registry::render_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, e] : entries_) {
    out += name + ": ";
    switch (e.type) {
      case Type::kCounter:
        out += std::to_string(e.counter->value());
        break;
      case Type::kGauge:
        out += std::to_string(e.gauge->value());
        break;
      case Type::kHistogram: {
        const Histogram& h = *e.histogram;
        out += "count=" + std::to_string(h.count()) + " sum_ms=" + fmt_double(h.sum()) +
               " p50=" + fmt_double(h.quantile(0.5)) + " p90=" + fmt_double(h.quantile(0.9)) +
               " p99=" + fmt_double(h.quantile(0.99));
        break;
      }
    }
    out += "\n";
  }
  return out;
}

std::string Registry::render_prometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Group by family: the exposition format wants one TYPE line and then all its samples.
  std::map<std::string, std::vector<const Entry*>> families;
  for (const auto& [name, e] : entries_) families[e.family].push_back(&e);
  std::string out;
  for (const auto& [family, list] : families) {
    Type type = list.front()->type;
    out += "# TYPE " + family + " " +
           (type == Type::kCounter ? "counter"
            : type == Type::kGauge ? "gauge"
                                   : "histogram") +
           "\n";
    for (const Entry* e : list) {
      if (type == Type::kCounter) {
        out += family + e->labels + " " + std::to_string(e->counter->value()) + "\n";
      } else if (type == Type::kGauge) {
        out += family + e->labels + " " + std::to_string(e->gauge->value()) + "\n";
      } else {
        const Histogram& h = *e->histogram;
        std::string base = e->labels.empty() ? "" : e->labels.substr(1, e->labels.size() - 2) + ",";
        uint64_t cum = 0;
        for (size_t i = 0; i <= Histogram::kBounds.size(); ++i) {
          cum += h.bucket(i);
          std::string le =
              i < Histogram::kBounds.size() ? fmt_double(Histogram::kBounds[i]) : "+Inf";
          out += family + "_bucket{" + base + "le=\"" + le + "\"} " + std::to_string(cum) + "\n";
        }
        out += family + "_sum" + e->labels + " " + fmt_double(h.sum()) + "\n";
        out += family + "_count" + e->labels + " " + std::to_string(h.count()) + "\n";
      }
    }
  }
  return out;
}

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: workers may still count at exit
  return *r;
}

}  // namespace sy::stats
