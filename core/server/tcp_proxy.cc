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
    Entry e{f, nullptr, {}};
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
  refresh_reading(SY_REQUEST);
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
  if (!pending_.empty()) {
    std::string p;
    p.swap(pending_);
    upstream_->write(p.data(), p.size());
    out_full_[SY_REQUEST] = upstream_->above_high();
  }
  // A FIN from the client (or a filter's shutdown) that came before the connection.
  if (fin_out_[SY_REQUEST]) upstream_->shutdown_write();
  refresh_reading(SY_RESPONSE);
  refresh_reading(SY_REQUEST);
}

void TcpSession::on_bytes(sy_direction_t from, const char* data, size_t len) {
  bytes_[from] += len;
  if (from == SY_REQUEST)
    lr_->stats.bytes_rx->inc(len);
  else
    lr_->stats.bytes_tx->inc(len);
  if (filters_.empty()) {
    // No filters: bytes go straight across, copied only if the kernel cannot take them now.
    write_out(from, std::string_view(data, len));
    refresh_reading(from);
    return;
  }
  deliver(from, std::string(data, len), false);
}

void TcpSession::deliver(sy_direction_t dir, std::string data, bool end, size_t from) {
  for (size_t k = from; k < filters_.size() && !closed_; ++k) {
    Entry& e = at(dir, k);
    Hold& h = e.hold[dir];
    if (h.on) {
      // The filter holds this direction: the new bytes join what it holds, and it is called
      // with all of them (as Envoy's network filters see their whole read buffer).
      h.bytes += data;
      data.swap(h.bytes);
      h.bytes.clear();
      end = end || h.end;
      h.on = h.end = false;
    }
    if (!e.factory->vt->on_data) continue;
    // Saved and restored: the callback may resume the other direction, which runs the chain
    // for it inside this call.
    std::string* saved_data = current_data_;
    sy_direction_t saved_dir = current_dir_;
    const filters::NetworkFilterFactory* saved_filter = current_filter_;
    current_data_ = &data;
    current_dir_ = dir;
    sy_filter_status_t st;
    {
      filters::ModuleCallMark mark(identity_of(*e.factory), "on_data");
      current_filter_ = e.factory.get();
      st = e.factory->vt->on_data(e.filter, handle(), dir, end);
    }
    current_data_ = saved_data;
    current_dir_ = saved_dir;
    current_filter_ = saved_filter;
    if (closed_) return;
    if (st == SY_CONTINUE) continue;
    if (st == SY_STOP_AND_WATERMARK) {
      // Held, in order, until the filter calls conn_resume; the source pauses at the watermark.
      h.on = true;
      h.end = end;
      h.bytes = std::move(data);
      refresh_reading(dir);
      return;
    }
    // SY_STOP: the bytes leave the flow (the filter may have written its own with
    // conn_inject). The end of the direction still goes on, or the tunnel would never finish.
    if (!end) return;
    data.clear();
  }
  if (closed_) return;
  write_out(dir, data);
  if (end) end_out(dir);
  refresh_reading(dir);
}

void TcpSession::write_out(sy_direction_t dir, std::string_view data) {
  if (data.empty() || fin_out_[dir] || closed_) return;
  if (dir == SY_REQUEST && !connected_) {
    pending_.append(data);
    return;
  }
  net::Socket* d = dest(dir);
  if (!d) return;
  d->write(data.data(), data.size());
  if (d->above_high()) out_full_[dir] = true;
}

void TcpSession::end_out(sy_direction_t dir) {
  if (fin_out_[dir] || closed_) return;
  fin_out_[dir] = true;
  // The FIN follows the bytes already queued; before the upstream connected, it is sent right
  // after the pending bytes (on_upstream_connect).
  if (dir == SY_RESPONSE || connected_) dest(dir)->shutdown_write();
  // Both directions ended: the tunnel is done once the queued bytes are out.
  if (fin_out_[SY_REQUEST] && fin_out_[SY_RESPONSE]) finish();
}

size_t TcpSession::held(sy_direction_t dir) const {
  size_t n = dir == SY_REQUEST ? pending_.size() : 0;
  for (const auto& e : filters_) n += e.hold[dir].bytes.size();
  return n;
}

void TcpSession::refresh_reading(sy_direction_t dir) {
  if (closed_) return;
  net::Socket* src = source(dir);
  if (!src || (dir == SY_RESPONSE && !connected_)) return;
  size_t h = held(dir);
  if (h > net::Socket::kHighWatermark)
    hold_full_[dir] = true;
  else if (h < net::Socket::kLowWatermark)
    hold_full_[dir] = false;
  bool read = !eof_in_[dir] && !user_paused_[dir] && !hold_full_[dir] && !out_full_[dir];
  if (read)
    src->read_start();
  else
    src->read_stop();
}

std::string* TcpSession::data(sy_direction_t dir) {
  return current_data_ && current_dir_ == dir ? current_data_ : nullptr;
}

bool TcpSession::inject(sy_direction_t dir, std::string_view bytes) {
  if (closed_ || fin_out_[dir]) return false;
  if (dir == SY_REQUEST && !connected_) {
    pending_.append(bytes);
    return true;
  }
  if (!dest(dir)) return false;
  write_out(dir, bytes);
  refresh_reading(dir);
  return true;
}

sy_status_t TcpSession::resume(void* filter, sy_direction_t dir) {
  if (closed_) return SY_ERR_STALE;
  for (size_t k = 0; k < filters_.size(); ++k) {
    Entry& e = at(dir, k);
    if (e.filter != filter) continue;
    Hold& h = e.hold[dir];
    if (!h.on) return SY_ERR_WRONG_PHASE;
    std::string bytes;
    bytes.swap(h.bytes);
    bool end = h.end;
    h.on = h.end = false;
    deliver(dir, std::move(bytes), end, k + 1);
    refresh_reading(dir);
    return SY_OK;
  }
  return SY_ERR_NOT_FOUND;
}

sy_status_t TcpSession::pause_reading(sy_direction_t side, bool paused) {
  if (closed_) return SY_ERR_STALE;
  user_paused_[side] = paused;
  refresh_reading(side);
  return SY_OK;
}

sy_status_t TcpSession::shutdown_write(sy_direction_t dir) {
  if (closed_) return SY_ERR_STALE;
  // What filters still hold in DIR can no longer go out after the FIN.
  for (auto& e : filters_) e.hold[dir] = Hold{};
  end_out(dir);
  return SY_OK;
}

void TcpSession::on_side_eof(sy_direction_t from) {
  eof_in_[from] = true;
  if (closed_) return;
  deliver(from, std::string(), true);
}

void TcpSession::on_side_error(sy_direction_t from, int err) {
  if (from == SY_RESPONSE && !connected_) {
    on_upstream_connect(err);
    return;
  }
  // A side that has sent its FIN, or was sent ours, is gone for good now: the other side gets
  // what is queued for it and a FIN. Any other error breaks the tunnel.
  sy_direction_t toward = from == SY_REQUEST ? SY_RESPONSE : SY_REQUEST;
  if (eof_in_[from] || fin_out_[toward])
    finish();
  else
    abort();
}

void TcpSession::on_side_drained(sy_direction_t side) {
  // SIDE's write queue drained: read again from the other side, which feeds it.
  sy_direction_t dir = side == SY_REQUEST ? SY_RESPONSE : SY_REQUEST;
  out_full_[dir] = false;
  refresh_reading(dir);
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
