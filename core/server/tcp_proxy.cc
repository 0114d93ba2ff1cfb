// TCP proxy sessions.
#include "core/server/tcp_proxy.h"

#include "core/log/log.h"
#include "core/server/stream_info.h"

namespace sy::server {
namespace {
thread_local size_t t_rr = 0;  // round robin over endpoints, per worker

const filters::ModuleIdentity* identity_of(const filters::NetworkFilterFactory& f) {
  return f.scope ? f.scope->identity : nullptr;
}
}  // namespace

TcpSession::TcpSession(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* client)
    : worker_(w),
      slot_(std::move(slot)),
      rt_(slot_->runtime),
      lr_(slot_->lr),
      client_(client),
      timer_(w->loop()) {
  client_side_.s = this;
  client_side_.from = SY_REQUEST;
  upstream_side_.s = this;
  upstream_side_.from = SY_RESPONSE;
  client_->set_events(&client_side_);
  peer_ip_ = client_->peer_ip();
  lr_->stats.cx_total->inc();
  lr_->stats.cx_active->inc();
  worker_->add(this);
  for (const auto& f : lr_->network_filters) {
    Entry e{f, nullptr};
    if (f->vt->on_connection_create) {
      filters::ModuleCallMark mark(identity_of(*f), "on_connection_create");
      current_filter_ = f.get();
      e.filter = f->vt->on_connection_create(f->config, handle());
      current_filter_ = nullptr;
    }
    if (e.filter) filters_.push_back(std::move(e));
  }
}

TcpSession::~TcpSession() {
  for (auto& e : filters_) {
    if (!e.factory->vt->on_connection_destroy) continue;
    filters::ModuleCallMark mark(identity_of(*e.factory), "on_connection_destroy");
    e.factory->vt->on_connection_destroy(e.filter);
  }
  if (client_) client_->close();
  if (upstream_) upstream_->close();
}

void TcpSession::start() {
  client_->read_start();
  connect_next();
}

void TcpSession::connect_next() {
  const auto& cl = lr_->tcp_cluster;
  if (!cl || cl->addrs.empty()) {
    abort();
    return;
  }
  endpoint_ = attempts_ == 0 ? t_rr++ % cl->addrs.size() : (endpoint_ + 1) % cl->addrs.size();
  ++attempts_;
  cl->stats.cx_total->inc();
  upstream_ = net::Socket::create(worker_->loop(), &upstream_side_);
  int rc = upstream_->connect(reinterpret_cast<const sockaddr*>(&cl->addrs[endpoint_]));
  if (rc != 0) {
    on_upstream_connect(rc);
    return;
  }
  timer_.start(uint64_t(cl->cfg.connect_timeout.count()),
               [this] { on_upstream_connect(UV_ETIMEDOUT); });
}

void TcpSession::on_upstream_connect(int status) {
  timer_.stop();
  const auto& cl = lr_->tcp_cluster;
  if (status != 0) {
    cl->stats.cx_connect_fail->inc();
    if (upstream_) {
      upstream_->close();
      upstream_ = nullptr;
    }
    if (attempts_ <= cl->cfg.connect_retries) {
      connect_next();
      return;
    }
    SY_DEBUG("tcp_proxy %s: upstream connect failed: %s", lr_->cfg->name.c_str(),
             uv_strerror(status));
    abort();
    return;
  }
  connected_ = true;
  cl->stats.cx_active->inc();
  upstream_->read_start();
  if (!pending_.empty()) {
    std::string p;
    p.swap(pending_);
    upstream_->write(p.data(), p.size());
    client_->read_start();
  }
}

void TcpSession::on_bytes(sy_direction_t from, const char* data, size_t len) {
  bytes_[from] += len;
  if (from == SY_REQUEST)
    lr_->stats.bytes_rx->inc(len);
  else
    lr_->stats.bytes_tx->inc(len);
  if (filters_.empty() && connected_) {
    // No filters: bytes go straight across, copied only if the kernel cannot take them now.
    net::Socket* d = dest(from);
    d->write(data, len);
    if (d->above_high()) (from == SY_REQUEST ? client_ : upstream_)->read_stop();
    return;
  }
  deliver(from, std::string(data, len), false);
}

void TcpSession::deliver(sy_direction_t dir, std::string data, bool end) {
  // Requests run the filters in order, responses in reverse, like HTTP filters.
  for (size_t k = 0; k < filters_.size() && !closed_; ++k) {
    Entry& e = dir == SY_REQUEST ? filters_[k] : filters_[filters_.size() - 1 - k];
    if (!e.factory->vt->on_data) continue;
    current_data_ = &data;
    current_dir_ = dir;
    sy_filter_status_t st;
    {
      filters::ModuleCallMark mark(identity_of(*e.factory), "on_data");
      current_filter_ = e.factory.get();
      st = e.factory->vt->on_data(e.filter, handle(), dir, end);
    }
    current_data_ = nullptr;
    current_filter_ = nullptr;
    if (st != SY_CONTINUE) return;  // the filter took the bytes out of the flow
  }
  if (closed_ || data.empty()) return;
  if (dir == SY_REQUEST && !connected_) {
    pending_ += data;
    if (pending_.size() > net::Socket::kHighWatermark) client_->read_stop();
    return;
  }
  net::Socket* d = dest(dir);
  if (!d) return;
  d->write(data.data(), data.size());
  if (d->above_high()) {
    net::Socket* src = dir == SY_REQUEST ? client_ : upstream_;
    if (src) src->read_stop();
  }
}

std::string* TcpSession::data(sy_direction_t dir) {
  return current_data_ && current_dir_ == dir ? current_data_ : nullptr;
}

bool TcpSession::inject(sy_direction_t dir, std::string_view bytes) {
  if (closed_) return false;
  if (dir == SY_REQUEST && !connected_) {
    pending_.append(bytes);
    return true;
  }
  net::Socket* d = dest(dir);
  if (!d) return false;
  d->write(bytes.data(), bytes.size());
  return true;
}

void TcpSession::on_side_eof(sy_direction_t from) {
  if (!filters_.empty()) deliver(from, std::string(), true);
  // One side is done: flush to the other and close both (no half-open tunnels to babysit).
  finish();
}

void TcpSession::on_side_error(sy_direction_t from, int err) {
  if (from == SY_RESPONSE && !connected_) {
    on_upstream_connect(err);
    return;
  }
  abort();
}

void TcpSession::on_side_drained(sy_direction_t side) {
  // SIDE's write queue drained: read again from the other side, which feeds it.
  net::Socket* src = side == SY_REQUEST ? upstream_ : client_;
  if (src && !closed_) src->read_start();
}

bool TcpSession::attribute(std::string_view path, std::string* out) const {
  if (path == "source.address")
    *out = peer_ip_;
  else if (path == "destination.address")
    *out = lr_->cfg->address.str();
  else if (path == "upstream.address") {
    if (!connected_) return false;
    *out = lr_->tcp_cluster->addr_strs[endpoint_];
  } else if (path == "xds.listener_name")
    *out = lr_->cfg->name;
  else if (path == "xds.cluster_name")
    *out = lr_->tcp_cluster ? lr_->tcp_cluster->cfg.name : "";
  else if (path == "connection.bytes_received")
    *out = std::to_string(bytes_[SY_REQUEST]);
  else if (path == "connection.bytes_sent")
    *out = std::to_string(bytes_[SY_RESPONSE]);
  else if (path == "plugin_name" && current_filter_)
    *out = current_filter_->filter_name;
  else if (path.starts_with("node."))
    return node_attribute(rt_->config->node, path, out);
  else
    return false;
  return true;
}

void TcpSession::finish() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  for (auto& e : filters_) {
    if (!e.factory->vt->on_connection_close) continue;
    filters::ModuleCallMark mark(identity_of(*e.factory), "on_connection_close");
    e.factory->vt->on_connection_close(e.filter, handle());
  }
  if (client_) client_->end();
  if (upstream_) upstream_->end();
  client_ = upstream_ = nullptr;
  if (connected_) lr_->tcp_cluster->stats.cx_active->dec();
  lr_->stats.cx_active->dec();
  worker_->remove(this);
}

void TcpSession::abort() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  for (auto& e : filters_) {
    if (!e.factory->vt->on_connection_close) continue;
    filters::ModuleCallMark mark(identity_of(*e.factory), "on_connection_close");
    e.factory->vt->on_connection_close(e.filter, handle());
  }
  if (client_) client_->close();
  if (upstream_) upstream_->close();
  client_ = upstream_ = nullptr;
  if (connected_) lr_->tcp_cluster->stats.cx_active->dec();
  lr_->stats.cx_active->dec();
  worker_->remove(this);
}

}  // namespace sy::server
