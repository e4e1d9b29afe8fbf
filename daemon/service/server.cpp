#include "daemon/service/server.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>
#include <cstdint>
#include <limits>

#include "build_config.hpp"
#include "daemon/base/log.hpp"
#include "daemon/base/loop.hpp"
#include "daemon/service/config_loader.hpp"
#include "daemon/worker.hpp"
#include "lib/clock.hpp"

namespace tcpecho {

namespace {

double unix_time_s() noexcept {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool same_metrics(const std::optional<MetricsConfig>& a, const std::optional<MetricsConfig>& b) noexcept {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->name == b->name && a->address == b->address && a->port == b->port);
}

// Builds the Prometheus text exposition format 0.0.4: a family's HELP and TYPE lines, then
// its samples.
class MetricsText {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        name_ = name;
        text_ += "# HELP " + name_ + " " + std::string(help) + "\n# TYPE " + name_ + " " + std::string(type) + "\n";
    }
    void sample(std::string_view labels, double value) {
        char number[64];
        std::snprintf(number, sizeof number, "%.17g", value);
        text_ += name_ + std::string(labels) + " " + number + "\n";
    }
    void per_worker(std::size_t worker, std::uint64_t value) {
        text_ += name_ + "{worker=\"" + std::to_string(worker) + "\"} " + std::to_string(value) + "\n";
    }
    std::string take() { return std::move(text_); }

private:
    std::string name_;
    std::string text_;
};

}  // namespace

namespace {

// STATUS= refresh period: live enough for `systemctl status`, rare enough to cost nothing.
constexpr double kStatusSeconds = 5.0;

}  // namespace

void prepare_process_signals() {
    // SIGPIPE must never end the daemon (sends use MSG_NOSIGNAL too, this covers the rest).
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Server::Server(Config config, ConfigLoader reload, std::vector<InheritedSocket> inherited)
    : config_(std::move(config)),
      reload_(std::move(reload)),
      table_(std::move(inherited), effective_workers(config_)),
      memory_budget_(config_.max_buffer_memory),
      start_time_s_(unix_time_s()),
      last_reload_time_s_(start_time_s_) {
    table_.check_serves_inherited(config_);
    table_.commit(table_.build(config_));
    if (config_.metrics) {
        metrics_socket_ = table_.metrics_socket(*config_.metrics);
        if (metrics_socket_) {
            metrics_source_ = std::make_shared<MetricsSource>();
            metrics_source_->listen_fd = metrics_socket_->fd();
            metrics_source_->render = [this] { return render_metrics(); };
        }
    }
}

Server::~Server() = default;

StatsSnapshot Server::snapshot() const {
    StatsSnapshot s;
    for (const auto& w : workers_) s.accumulate(w->stats());
    return s;
}

std::string Server::active_per_worker() const {
    std::string out;
    for (const auto& w : workers_) {
        StatsSnapshot s;
        s.accumulate(w->stats());
        out += (out.empty() ? "" : ",") + std::to_string(s.active_connections());
    }
    return out;
}

std::string Server::render_metrics() const {
    MetricsText out;
    std::vector<StatsSnapshot> per_worker(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) per_worker[i].accumulate(workers_[i]->stats());
#define TCPECHO_EXPOSE(name, help)                                                   \
    out.family("tcpechod_" #name "_total", "counter", help);                        \
    for (std::size_t i = 0; i < per_worker.size(); ++i) out.per_worker(i, per_worker[i].name);
    TCPECHO_COUNTERS(TCPECHO_EXPOSE)
#undef TCPECHO_EXPOSE
    out.family("tcpechod_connections_active", "gauge", "TCP connections being served");
    for (std::size_t i = 0; i < per_worker.size(); ++i) out.per_worker(i, per_worker[i].active_connections());
    out.family("tcpechod_buffer_memory_bytes", "gauge", "buffer memory of all TCP connections (max_buffer_memory counts it)");
    out.sample("", static_cast<double>(memory_budget_.used()));
    out.family("tcpechod_workers", "gauge", "worker threads");
    out.sample("", static_cast<double>(workers_.size()));
    out.family("tcpechod_build_info", "gauge", "always 1; the version is the label");
    out.sample("{version=\"" TCPECHO_VERSION "\"}", 1);
    out.family("tcpechod_start_time_seconds", "gauge", "when tcpechod started, in Unix seconds");
    out.sample("", start_time_s_);
    out.family("tcpechod_config_last_reload_success", "gauge", "1 if the last reload (or the start) succeeded");
    out.sample("", last_reload_ok_.load(std::memory_order_relaxed) ? 1 : 0);
    out.family("tcpechod_config_last_reload_timestamp_seconds", "gauge",
               "when the configuration was last loaded or a reload tried, in Unix seconds");
    out.sample("", last_reload_time_s_.load(std::memory_order_relaxed));
    return out.take();
}

void Server::log_listeners(const ListenerSet& set, const char* verb) const {
    for (const auto& l : set.tcp) LOG_NOTICE("%s %s", verb, l->describe().c_str());
    for (const auto& l : set.udp) LOG_NOTICE("%s %s", verb, l->describe().c_str());
    for (const ListenerConfig& l : set.without_socket) {
        LOG_NOTICE("not serving name=%s proto=%s: systemd passed no %s socket named \"%s\" (a socket unit with "
                    "FileDescriptorName=%s and Service=tcpechod.service would provide one)",
                    l.name.c_str(), std::string(to_string(l.proto)).c_str(), std::string(to_string(l.proto)).c_str(),
                    l.name.c_str(), l.name.c_str());
    }
}

std::string Server::status_text() const {
    StatsSnapshot s = snapshot();
    std::uint64_t errors = s.connection_errors + s.frames_too_large + s.udp_send_errors + s.udp_receive_errors;
    std::string out = count_text(table_.current()->size(), "listener", "listeners") + ", " +
                      count_text(s.active_connections(), "connection", "connections") + " (" +
                      std::to_string(s.connections_accepted) + " accepted), " + std::to_string(s.bytes_sent) +
                      " bytes echoed, " + std::to_string(s.frames_echoed) + " frames, " +
                      std::to_string(s.udp_datagrams_echoed) + " datagrams, " + std::to_string(errors) + " errors; ";
    if (draining_) {
        out += "draining";
    } else if (reload_in_flight_) {
        out += "reloading";
    } else if (!last_reload_error_.empty()) {
        out += "reload failed, serving the previous configuration: " + last_reload_error_;
    } else if (reloads_ok_ > 0) {
        out += "configuration reloaded (" + std::to_string(reloads_ok_) + "x)";
    } else {
        out += "configuration loaded";
    }
    return out;
}

void Server::reload() {
    if (draining_) {
        LOG_NOTICE("SIGHUP while draining: no reload");
        return;
    }
    if (reload_in_flight_) {
        LOG_NOTICE("SIGHUP while the workers apply the previous reload: reloading again when they are done");
        reload_queued_ = true;
        return;
    }
    notifier_.reloading("reloading the configuration");
    LOG_NOTICE("SIGHUP: reloading the configuration");
    std::shared_ptr<ListenerSet> next_set;
    Config next;
    bool metrics_kept = false;
    try {
        next = reload_();
        // [metrics] changes wait for a restart: the running endpoint stays, so the checks
        // below (passed sockets, names) are against it.
        if (!same_metrics(next.metrics, config_.metrics)) {
            next.metrics = config_.metrics;
            metrics_kept = true;
        }
        if (next.metrics) {
            for (const ListenerConfig& l : next.listeners) {
                if (l.proto == Protocol::Tcp && l.name == next.metrics->name) {
                    throw ConfigError(next.source + ": listener \"" + l.name +
                                      "\" has the name of the running [metrics] endpoint");
                }
            }
        }
        table_.check_serves_inherited(next);
        next_set = table_.build(next);
    } catch (const std::exception& e) {
        ++reloads_failed_;
        last_reload_error_ = e.what();
        last_reload_ok_.store(false, std::memory_order_relaxed);
        last_reload_time_s_.store(unix_time_s(), std::memory_order_relaxed);
        LOG_ERR("reload failed: %s; still serving the previous configuration", e.what());
        notifier_.ready(status_text());
        return;
    }
    if (next.workers != config_.workers) {
        LOG_WARNING("reload: workers = %u takes effect at the next restart; still %u workers", next.workers,
                    static_cast<unsigned>(workers_.size()));
        next.workers = config_.workers;
    }
    if (metrics_kept) LOG_WARNING("reload: changes to [metrics] take effect at the next restart");
    last_reload_ok_.store(true, std::memory_order_relaxed);
    last_reload_time_s_.store(unix_time_s(), std::memory_order_relaxed);
    log_set_level(next.log_level);
    memory_budget_.set_limit(next.max_buffer_memory);
    std::uint64_t generation = next_set->generation;
    pending_close_.push_back(PendingClose{generation, table_.commit(next_set)});
    config_ = std::move(next);
    last_reload_error_.clear();
    reload_in_flight_ = true;
    log_listeners(*next_set, "reload: serving");
    for (const auto& w : workers_) w->request_apply(next_set);
    // READY=1 follows in on_worker_event(), once every worker serves the new set.
}

void Server::on_worker_event() {
    bool all_finished = true;
    std::uint64_t applied = std::numeric_limits<std::uint64_t>::max();
    for (const auto& w : workers_) {
        if (w->finished()) continue;  // serves nothing any more, watches nothing
        all_finished = false;
        applied = std::min(applied, w->applied_generation());
    }
    // Removed TCP sockets: no worker watches them any more, so closing cannot race an accept.
    auto done = [applied](const PendingClose& p) { return p.generation <= applied; };
    for (auto& p : pending_close_) {
        if (!done(p)) continue;
        for (const auto& socket : p.sockets) socket->close();
    }
    pending_close_.erase(std::remove_if(pending_close_.begin(), pending_close_.end(), done), pending_close_.end());
    if (reload_in_flight_ && applied >= table_.current()->generation) {
        reload_in_flight_ = false;
        ++reloads_ok_;
        LOG_NOTICE("reload complete: %s serves %s; connections opened before keep their settings",
                   config_.source.c_str(), count_text(table_.current()->size(), "listener", "listeners").c_str());
        // After STOPPING=1 (SIGTERM during the reload) the manager must not hear READY=1.
        if (!draining_) notifier_.ready(status_text());
        if (reload_queued_ && !draining_) {
            reload_queued_ = false;
            reload();
        }
    }
    if (all_finished && control_ != nullptr) control_->stop();
}

void Server::watchdog_tick() {
    // Heartbeats are stamped every eighth of the watchdog period; one older than half of it
    // means that loop has not turned for four of its own ticks. Then the keep-alive is held
    // back, and one period after the last one systemd kills and restarts us. (A keep-alive
    // withheld by mistake would be fatal just the same, hence the wide margin.)
    const std::uint64_t limit_ms = notifier_.watchdog_usec() / 2000;
    const std::uint64_t now = monotonic_ms();
    auto age_ms = [now](const Worker& w) {
        std::uint64_t last = w.last_turn_ms();
        return last >= now ? 0 : now - last;  // stamped after `now` was read: fresh
    };
    std::vector<unsigned> stale;
    for (unsigned i = 0; i < workers_.size(); ++i) {
        const Worker& w = *workers_[i];
        if (!w.finished() && age_ms(w) > limit_ms) stale.push_back(i);
    }
    if (stale.empty()) {
        notifier_.watchdog();
    } else if (stale != stale_workers_) {
        LOG_ERR("watchdog: worker %u has not run its loop for %llu ms; withholding WATCHDOG=1", stale.front(),
                static_cast<unsigned long long>(age_ms(*workers_[stale.front()])));
    }
    stale_workers_ = std::move(stale);
}

int Server::run() {
    Loop control(Loop::Kind::Control);
    control_ = &control;
    Async worker_event(control, [this] { on_worker_event(); });

    unsigned n = effective_workers(config_);
    const double watchdog_s = static_cast<double>(notifier_.watchdog_usec()) / 1e6;
    for (unsigned i = 0; i < n; ++i) {
        workers_.push_back(std::make_unique<Worker>(i, table_.current(), accept_gate_,
                                                    [&worker_event] { worker_event.send(); }));
        if (watchdog_s > 0) workers_.back()->set_heartbeat(watchdog_s / 8);
        workers_.back()->set_memory_budget(&memory_budget_);
        if (metrics_source_) workers_.back()->set_metrics(metrics_source_);
    }
    if (n > 1) {
        balancer_ = std::make_unique<Balancer>(n);
        for (const auto& w : workers_) {
            // workers_ is complete and outlives the workers' threads: read without a lock.
            w->set_balancer(balancer_.get(), [this](unsigned target, std::shared_ptr<Listener> listener, int fd) {
                workers_[target]->request_hand_off(std::move(listener), fd);
            });
        }
    }
    log_listeners(*table_.current(), "listening");
    if (metrics_socket_) {
        LOG_NOTICE("metrics listening name=%s address=%s path=/metrics%s", config_.metrics->name.c_str(),
                   metrics_socket_->local().to_string().c_str(), metrics_socket_->from_systemd() ? " from=systemd" : "");
    } else if (config_.metrics) {
        LOG_NOTICE("not serving metrics: systemd passed no tcp socket named \"%s\" (tcpechod-metrics.socket "
                   "provides one)", config_.metrics->name.c_str());
    }
    try {
        for (const auto& w : workers_) w->start();
    } catch (...) {
        // Stop the workers that did start before unwinding (their destructors join them).
        for (const auto& w : workers_) w->request_force_close();
        for (const auto& w : workers_) w->join();
        control_ = nullptr;
        throw;
    }
    LOG_NOTICE("ready: %s, %s, config %s%s", count_text(n, "worker", "workers").c_str(),
               count_text(table_.current()->size(), "listener", "listeners").c_str(), config_.source.c_str(),
               table_.socket_activated() ? ", sockets from systemd" : "");
    notifier_.ready(status_text());

    Timer status_timer(control, [this] { notifier_.status(status_text()); });
    status_timer.start(kStatusSeconds, kStatusSeconds);
    Timer watchdog_timer(control, [this] { watchdog_tick(); });
    if (watchdog_s > 0) {
        LOG_INFO("watchdog: keep-alive every %.3f s while every worker loop turns", watchdog_s / 2);
        watchdog_timer.start(watchdog_s / 2, watchdog_s / 2);
    }

    Timer drain_deadline(control, [&] {
        LOG_WARNING("drain_timeout (%llu ms) expired: closing the remaining connections",
                    static_cast<unsigned long long>(config_.drain_timeout_ms));
        for (const auto& w : workers_) w->request_force_close();
    });
    auto start_drain = [&](const char* signame) {
        if (draining_) {
            LOG_NOTICE("%s again: closing the remaining connections now", signame);
            drain_deadline.stop();
            for (const auto& w : workers_) w->request_force_close();
            return;
        }
        draining_ = true;
        StatsSnapshot s = snapshot();
        const std::string draining = count_text(s.active_connections(), "connection", "connections");
        notifier_.stopping("draining " + draining);
        LOG_NOTICE("%s: draining %s (no new ones accepted; up to %llu ms)", signame, draining.c_str(),
                   static_cast<unsigned long long>(config_.drain_timeout_ms));
        for (const auto& w : workers_) w->request_drain();
        drain_deadline.start(static_cast<double>(config_.drain_timeout_ms) / 1000.0);
    };
    SignalWatcher on_term(control, SIGTERM, [&] { start_drain("SIGTERM"); });
    SignalWatcher on_int(control, SIGINT, [&] { start_drain("SIGINT"); });
    SignalWatcher on_usr1(control, SIGUSR1, [&] { 
        LOG_NOTICE("counters %s workers_active=%s", snapshot().format().c_str(), active_per_worker().c_str());
    });
    SignalWatcher on_hup(control, SIGHUP, [this] { reload(); });

    control.run();
    control_ = nullptr;
    for (const auto& w : workers_) w->join();

    StatsSnapshot s = snapshot();
    if (s.drain_forced_closes > 0) {
        LOG_WARNING("drain incomplete: force-closed %s",
                    count_text(s.drain_forced_closes, "connection", "connections").c_str());
    }
    LOG_NOTICE("stopped: counters %s", s.format().c_str());
    return 0;
}

}  // namespace tcpecho
