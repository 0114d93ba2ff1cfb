// Counters, gauges and histograms, named once at config time and updated lock-free by workers.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sy::stats {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void inc(int64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void dec(int64_t n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Fixed millisecond buckets: cheap to record (a short scan), enough to tell p50 from p99.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {
      0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
  void record(double ms);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return double(sum_us_.load(std::memory_order_relaxed)) / 1000.0; }
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  // Upper bound of the bucket holding quantile Q (0..1); 0 when empty.
  double quantile(double q) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last one is +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

// Every stat lives as long as the process: reloads look stats up by name and keep counting.
class Registry {
 public:
  // KIND is the family ("listener", "route", "cluster", "server"), LABELS identify the instance,
  // NAME the stat. Text name: kind.label1.label2.name; Prometheus: switchyard_kind_name{labels}.
  // A label named __name__ is the Prometheus family instead (and is left out of both names).
  Counter* counter(const std::string& kind, const Labels& labels, const std::string& name);
  Gauge* gauge(const std::string& kind, const Labels& labels, const std::string& name);
  Histogram* histogram(const std::string& kind, const Labels& labels, const std::string& name);

  std::string render_text() const;
  std::string render_prometheus() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Entry {
    Type type;
    std::string family;  // prometheus metric name
    std::string labels;  // rendered {a="b"} or ""
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  Entry& entry(Type type, const std::string& kind, const Labels& labels, const std::string& name);

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // by text name, so output is sorted
};

// The process-wide registry.
Registry& registry();

}  // namespace sy::stats
