// The WASI preview1 functions Proxy-Wasm SDKs import (Go's wasip1 port needs many to merely
// instantiate): stdout/stderr go to the plugin's log, clocks and randomness are real, the
// environment is vm_config.environment_variables, and the file system is absent (EBADF/ENOSYS).
#include <sys/random.h>

#include <cstring>
#include <ctime>

#include "hostcall.h"

namespace sywasm {
namespace {

enum : int32_t {
  kSuccess = 0,
  kBadf = 8,
  kInval = 28,
  kNosys = 52,
  kSpipe = 70,
  kFault = 21,
};

int64_t fd_write(Vm& vm, const wasmtime_val_t* a) {
  uint32_t fd = u32(a, 0);
  uint64_t iovs = u32(a, 1), n = u32(a, 2);
  if (fd != 1 && fd != 2) return kBadf;
  std::string out;
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t* iov = vm.mem(iovs + i * 8, 8);
    if (!iov) return kFault;
    uint32_t ptr, len;
    memcpy(&ptr, iov, 4);
    memcpy(&len, iov + 4, 4);
    std::string_view part;
    if (!vm.read(ptr, len, &part)) return kFault;
    out.append(part);
  }
  if (!vm.write_u32(u32(a, 3), uint32_t(out.size()))) return kFault;
  vm.write_output(int(fd), out);
  return kSuccess;
}

int64_t fd_read(Vm&, const wasmtime_val_t* a) { return u32(a, 0) == 0 ? kNosys : kBadf; }
int64_t fd_badf(Vm&, const wasmtime_val_t*) { return kBadf; }

int64_t fd_seek(Vm&, const wasmtime_val_t* a) { return u32(a, 0) <= 2 ? kSpipe : kBadf; }

int64_t fd_fdstat_get(Vm& vm, const wasmtime_val_t* a) {
  if (u32(a, 0) > 2) return kBadf;
  uint8_t* p = vm.mem(u32(a, 1), 24);
  if (!p) return kFault;
  memset(p, 0, 24);
  p[0] = 2;  // character device
  uint64_t rights = ~0ull;
  memcpy(p + 8, &rights, 8);
  memcpy(p + 16, &rights, 8);
  return kSuccess;
}

int64_t fd_fdstat_set_flags(Vm&, const wasmtime_val_t* a) {
  return u32(a, 0) <= 2 ? kSuccess : kBadf;
}

int64_t clock_time_get(Vm& vm, const wasmtime_val_t* a) {
  struct timespec ts;
  clockid_t id = u32(a, 0) == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
  if (u32(a, 0) > 3) return kInval;
  clock_gettime(id, &ts);
  return vm.write_u64(u32(a, 2), uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec))
             ? kSuccess
             : kFault;
}

int64_t clock_res_get(Vm& vm, const wasmtime_val_t* a) {
  return vm.write_u64(u32(a, 1), 1) ? kSuccess : kFault;
}

int64_t random_get(Vm& vm, const wasmtime_val_t* a) {
  uint8_t* p = vm.mem(u32(a, 0), u32(a, 1));
  if (!p && u32(a, 1)) return kFault;
  size_t done = 0, len = u32(a, 1);
  while (done < len) {
    ssize_t n = getrandom(p + done, len - done, 0);
    if (n <= 0) return kNosys;
    done += size_t(n);
  }
  return kSuccess;
}

std::vector<std::string> env_strings(Vm& vm) {
  std::vector<std::string> out;
  for (const auto& [k, v] : vm.group->cfg.env) out.push_back(k + "=" + v);
  return out;
}

int64_t environ_sizes_get(Vm& vm, const wasmtime_val_t* a) {
  auto env = env_strings(vm);
  size_t bytes = 0;
  for (const auto& e : env) bytes += e.size() + 1;
  return vm.write_u32(u32(a, 0), uint32_t(env.size())) && vm.write_u32(u32(a, 1), uint32_t(bytes))
             ? kSuccess
             : kFault;
}

int64_t environ_get(Vm& vm, const wasmtime_val_t* a) {
  uint64_t ptrs = u32(a, 0), buf = u32(a, 1);
  for (const auto& e : env_strings(vm)) {
    uint8_t* p = vm.mem(buf, e.size() + 1);
    if (!p || !vm.write_u32(ptrs, uint32_t(buf))) return kFault;
    memcpy(p, e.c_str(), e.size() + 1);
    buf += e.size() + 1;
    ptrs += 4;
  }
  return kSuccess;
}

int64_t args_sizes_get(Vm& vm, const wasmtime_val_t* a) {
  return vm.write_u32(u32(a, 0), 0) && vm.write_u32(u32(a, 1), 0) ? kSuccess : kFault;
}

int64_t args_get(Vm&, const wasmtime_val_t*) { return kSuccess; }

int64_t proc_exit(Vm& vm, const wasmtime_val_t* a) {
  vm.exit_code = int(u32(a, 0));
  vm.fail("proc_exit(" + std::to_string(vm.exit_code) + ")");
  vm.pending_trap = true;
  return 0;
}

int64_t sched_yield(Vm&, const wasmtime_val_t*) { return kSuccess; }

// Every subscription is reported as having happened at once: a plugin must not block its
// worker, so a sleep (a clock subscription) returns immediately.
int64_t poll_oneoff(Vm& vm, const wasmtime_val_t* a) {
  uint64_t in = u32(a, 0), out = u32(a, 1), n = u32(a, 2);
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t* sub = vm.mem(in + i * 48, 48);
    uint8_t* ev = vm.mem(out + i * 32, 32);
    if (!sub || !ev) return kFault;
    memset(ev, 0, 32);
    memcpy(ev, sub, 8);  // userdata
    ev[10] = sub[8];     // the event type is the subscription's tag
  }
  return vm.write_u32(u32(a, 3), uint32_t(n)) ? kSuccess : kFault;
}

}  // namespace

void add_wasi_defs(std::vector<HostDef>* out) {
  const HostDef defs[] = {
      {"", "fd_write", "iiii", "i", fd_write},
      {"", "fd_read", "iiii", "i", fd_read},
      {"", "fd_close", "i", "i", fd_badf},
      {"", "fd_seek", "iIii", "i", fd_seek},
      {"", "fd_fdstat_get", "ii", "i", fd_fdstat_get},
      {"", "fd_fdstat_set_flags", "ii", "i", fd_fdstat_set_flags},
      {"", "fd_prestat_get", "ii", "i", fd_badf},
      {"", "fd_prestat_dir_name", "iii", "i", fd_badf},
      {"", "clock_time_get", "iIi", "i", clock_time_get},
      {"", "clock_res_get", "ii", "i", clock_res_get},
      {"", "random_get", "ii", "i", random_get},
      {"", "environ_sizes_get", "ii", "i", environ_sizes_get},
      {"", "environ_get", "ii", "i", environ_get},
      {"", "args_sizes_get", "ii", "i", args_sizes_get},
      {"", "args_get", "ii", "i", args_get},
      {"", "proc_exit", "i", "", proc_exit},
      {"", "sched_yield", "", "i", sched_yield},
      {"", "poll_oneoff", "iiii", "i", poll_oneoff},
  };
  // Registered under both names WASI modules use.
  for (const char* m : {"wasi_snapshot_preview1", "wasi_unstable"}) {
    for (HostDef d : defs) {
      d.module = m;
      out->push_back(d);
    }
  }
}

}  // namespace sywasm
