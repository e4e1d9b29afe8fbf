#include "daemon/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <stdexcept>

#include "lib/clock.hpp"

namespace tcpecho {

namespace {

// While draining, a connection that holds no data and was quiet this long is closed.
constexpr std::uint64_t kDrainQuietMs = 500;
constexpr double kDrainTickSeconds = 0.1;
// When even the reserve fd is gone, accepting pauses this long instead of spinning.
constexpr double kAcceptRetrySeconds = 0.1;
// At max_buffer_memory, how often a worker looks whether the budget has room again. Memory
// is freed by other workers' connections too, so this is a poll, not an event; it runs only
// while paused.
constexpr double kMemoryRetrySeconds = 0.02;

// UDP sockets of `listeners` that worker `index` serves.
std::size_t udp_socket_count(const ListenerSet& listeners, unsigned index) noexcept {
    std::size_t n = 0;
    for (const auto& l : listeners.udp) n += index < l->sockets()->size() ? 1 : 0;
    return n;
}

}  // namespace

// --- Worker ------------------------------------------------------------------------------

Worker::Worker(unsigned index, std::shared_ptr<const ListenerSet> listeners, AcceptGate& accept_gate,
               std::function<void()> notify_main)
    : TcpContext(loop_, stats_, buffers_, accept_gate),
      index_(index),
      loop_(Loop::Kind::Worker),
      buffers_(kPoolBufferSize, kPoolMaxFreeBuffers),
      notify_main_(std::move(notify_main)),
      control_(loop_, [this] { on_control(); }),
      idle_timer_(loop_, [this] { expire_idle(); }),
      drain_tick_(loop_, [this] { close_quiet_connections(); }),
      accept_retry_(loop_, [this] { resume_accepting(); }),
      heartbeat_(loop_, [this] { last_turn_ms_.store(monotonic_ms(), std::memory_order_release); }),
      memory_retry_(loop_, [this] { retry_after_memory_pause(); }) {
    for (const auto& l : listeners->tcp) acceptors_.push_back(std::make_unique<Acceptor>(*this, l));
    resume_accepting();
    add_udp_echoes(*listeners);
    if (udp_echoes_.size() != udp_socket_count(*listeners, index_)) {
        throw std::runtime_error("worker " + std::to_string(index_) +
                                 " cannot serve all its udp sockets (the reason is logged above)");
    }
    applied_generation_.store(listeners->generation, std::memory_order_release);
}

void Worker::add_udp_echoes(const ListenerSet& listeners) noexcept {
    for (const auto& l : listeners.udp) {
        // A socket from systemd is one socket: worker 0 serves it.
        if (index_ >= l->sockets()->size()) continue;
        std::unique_ptr<UdpEcho> echo;
        try {
            echo = std::make_unique<UdpEcho>(*this, l, l->sockets()->fd(index_));
        } catch (const std::bad_alloc&) {
            LOG_ERR("worker %u: out of memory for udp listener %s", index_, l->config().name.c_str());
            l->sockets()->close(index_);  // else it keeps its share of the SO_REUSEPORT group, unread
            continue;
        }
        // Edge-triggered like connections: a datagram that arrives later is a new edge.
        // EPOLL_CTL_ADD reports datagrams already queued, so none waits for the next one.
        if (int err = loop_.watch(echo->fd(), echo.get(), EPOLLIN | EPOLLET); err != 0) {
            LOG_ERR("worker %u cannot watch udp listener %s: %s", index_, l->config().name.c_str(),
                    errno_text(err).c_str());
            l->sockets()->close(index_);
            continue;
        }
        udp_echoes_.push_back(std::move(echo));
    }
}

Worker::~Worker() {
    join();
    force_close_all();
    for (auto [index, fd] : pending_adopt_) ::close(fd);  // requested after the loop ended
    for (const auto& [listener, fd] : pending_hand_off_) {
        ::close(fd);
        listener->remove_connection();
        if (balancer_ != nullptr) balancer_->release(index_);
    }
}

void Worker::set_metrics(std::shared_ptr<MetricsSource> source) {
    metrics_ = std::make_unique<MetricsEndpoint>(*this, std::move(source));
    if (int err = metrics_->start(); err != 0) {
        LOG_ERR("worker %u cannot watch the metrics socket: %s", index_, errno_text(err).c_str());
    }
}

void Worker::start() {
    if (heartbeat_s_ > 0) {
        last_turn_ms_.store(monotonic_ms(), std::memory_order_release);
        heartbeat_.start(heartbeat_s_, heartbeat_s_);
    }
    thread_ = std::thread([this] { run(); });
    // Named here, not in run(): once start() returns (and "ready" is logged) the name is set,
    // so tools and tests that look a worker up by name never race its start.
    char name[16];
    std::snprintf(name, sizeof name, "tcpechod-w%u", index_);
    ::pthread_setname_np(thread_.native_handle(), name);
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run() noexcept {
    loop_.run();
    finished_.store(true, std::memory_order_release);
    notify_main_();
}

void Worker::request_drain() noexcept {
    drain_requested_.store(true, std::memory_order_release);
    control_.send();
}

void Worker::request_force_close() noexcept {
    force_requested_.store(true, std::memory_order_release);
    control_.send();
}

void Worker::request_apply(std::shared_ptr<const ListenerSet> listeners) {
    {
        std::lock_guard<std::mutex> lock(pending_mutex_);
        pending_ = std::move(listeners);  // a newer set replaces one not yet applied
    }
    control_.send();
}

void Worker::request_adopt(std::size_t tcp_listener_index, int fd) {
    {
        std::lock_guard<std::mutex> lock(pending_mutex_);
        pending_adopt_.emplace_back(tcp_listener_index, fd);
    }
    control_.send();
}

void Worker::on_control() noexcept {
    std::shared_ptr<const ListenerSet> next;
    std::vector<std::pair<std::size_t, int>> adopt;
    std::vector<std::pair<std::shared_ptr<Listener>, int>> handed;
    {
        std::lock_guard<std::mutex> lock(pending_mutex_);
        next = std::move(pending_);
        adopt.swap(pending_adopt_);
        handed.swap(pending_hand_off_);
    }
    if (next) apply(std::move(next));
    for (const auto& [listener, fd] : handed) take_hand_off(listener, fd);
    for (auto [index, fd] : adopt) {
        if (index < acceptors_.size() && !draining_) add_connection(*acceptors_[index], fd);
        else ::close(fd);
    }
    if (force_requested_.load(std::memory_order_acquire) && !forced_) {
        forced_ = true;
        if (!draining_) begin_drain();
        force_close_all();
        loop_.stop();
        return;
    }
    if (drain_requested_.load(std::memory_order_acquire) && !draining_) begin_drain();
}

void Worker::apply(std::shared_ptr<const ListenerSet> next) noexcept {
    // Draining: nothing new is served any more, whatever the set says.
    if (!draining_) {
        // TCP: the old acceptors stop accepting but stay while their connections last; the same
        // socket may be in the new set, so every old watch goes before any new one.
        const bool was_accepting = accepting_;
        if (accepting_) pause_accepting(0);
        for (auto& a : acceptors_) retired_acceptors_.push_back(std::move(a));
        acceptors_.clear();
        try {
            for (const auto& l : next->tcp) acceptors_.push_back(std::make_unique<Acceptor>(*this, l));
        } catch (const std::bad_alloc&) {
            LOG_ERR("worker %u: out of memory applying the new listeners", index_);
        }
        if (was_accepting) resume_accepting();  // else the accept-retry timer resumes (fds ran out)
        // UDP: no state to keep; this worker closes its socket of a listener the set dropped.
        for (auto& echo : udp_echoes_) {
            loop_.unwatch(echo->fd());
            loop_.cancel_deferred(echo.get());
            const auto& sockets = echo->listener().sockets();
            bool kept = false;
            for (const auto& l : next->udp) kept = kept || l->sockets() == sockets;
            if (!kept) sockets->close(index_);
        }
        udp_echoes_.clear();
        add_udp_echoes(*next);
        prune_retired_acceptors();
    }
    applied_generation_.store(next->generation, std::memory_order_release);
    notify_main_();
}

void Worker::prune_retired_acceptors() noexcept {
    auto unused = [](const std::unique_ptr<Acceptor>& a) { return a->unused(); };
    retired_acceptors_.erase(std::remove_if(retired_acceptors_.begin(), retired_acceptors_.end(), unused), retired_acceptors_.end());
}

void Worker::on_memory_exhausted() noexcept {
    if (memory_paused_) return;
    memory_paused_ = true;
    stats_.memory_accept_pauses.add();
    buffers_.trim();  // this worker's idle buffers hold budget too
    pause_accepting(0);
    if (const MemoryBudget& budget = *buffers_.budget(); may_log_peer_event()) {
        LOG_WARNING("worker %u: max_buffer_memory reached (%llu of %llu bytes): not reading or accepting until "
                    "echoes drain",
                    index_, static_cast<unsigned long long>(budget.used()),
                    static_cast<unsigned long long>(budget.limit()));
    }
    memory_retry_.start(kMemoryRetrySeconds, kMemoryRetrySeconds);
}

void Worker::retry_after_memory_pause() noexcept {
    MemoryBudget& budget = *buffers_.budget();
    if (!budget.try_resume()) return;  // the first worker to see room ends the pause for all
    memory_retry_.stop();
    memory_paused_ = false;
    std::size_t resumed = 0;
    for_each_acceptor([&resumed](Acceptor& acceptor) {
        for (Connection* c = acceptor.idle().front(); c != nullptr; c = acceptor.idle().next(*c)) {
            resumed += c->resume_after_memory_pause() ? 1 : 0;
        }
    });
    if (!accept_retry_.active()) resume_accepting();  // else out of fds too: that timer resumes it
    if (may_log_peer_event()) {
        LOG_NOTICE("worker %u: buffer memory down to %llu of %llu bytes: reading (%s) and accepting again", index_,
                   static_cast<unsigned long long>(budget.used()), static_cast<unsigned long long>(budget.limit()),
                   count_text(resumed, "connection", "connections").c_str());
    }
}

void Worker::resume_accepting() noexcept {
    if (accepting_ || draining_ || memory_paused_) return;
    for (auto& a : acceptors_) {
        // Level-triggered on purpose: a backlog left by the accept budget is reported again.
        // EPOLLEXCLUSIVE: one connection wakes one worker, not all of them.
        if (int err = loop_.watch(a->listener().fd(), a.get(), EPOLLIN | EPOLLEXCLUSIVE); err != 0) {
            LOG_ERR("worker %u cannot watch listener %s: %s", index_, a->listener().config().name.c_str(),
                    errno_text(err).c_str());
        }
    }
    accepting_ = true;
}

void Worker::pause_accepting(double seconds) noexcept {
    if (!accepting_) return;
    for (auto& a : acceptors_) loop_.unwatch(a->listener().fd());
    accepting_ = false;
    if (seconds > 0) accept_retry_.start(seconds);
}

void Worker::add_connection(Acceptor& acceptor, int fd) noexcept {
    if (!acceptor.listener().try_add_connection()) {
        stats_.connections_rejected.add();
        if (may_log_peer_event()) {
            LOG_WARNING("connection refused: at max_connections=%u %s", acceptor.limits().max_connections,
                        peer_tail(SocketAddress::peer_text(fd), acceptor.listener().config().name).c_str());
        }
        ::close(fd);
        return;
    }
    if (balancer_ != nullptr) {
        const unsigned target = balancer_->assign(index_);
        if (target != index_) {
            try {
                hand_off_(target, acceptor.shared_listener(), fd);
            } catch (...) {  // out of memory for the queue entry: this connection only
                ::close(fd);
                acceptor.listener().remove_connection();
                balancer_->release(target);
            }
            return;
        }
    }
    serve_connection(acceptor, fd);
}

void Worker::request_hand_off(std::shared_ptr<Listener> listener, int fd) {
    {
        std::lock_guard<std::mutex> lock(pending_mutex_);
        pending_hand_off_.emplace_back(std::move(listener), fd);
    }
    control_.send();
}

void Worker::take_hand_off(const std::shared_ptr<Listener>& listener, int fd) noexcept {
    if (!draining_) {
        // The connection keeps the settings of the generation it was accepted under. During a
        // reload this worker may already serve the next one (its acceptor for that listener
        // pruned) or not yet: then a retired acceptor for it serves the connection, as it
        // would the ones accepted before the reload.
        Acceptor* acceptor = nullptr;
        for_each_acceptor([&](Acceptor& a) {
            if (acceptor == nullptr && &a.listener() == listener.get()) acceptor = &a;
        });
        try {
            if (acceptor == nullptr) {
                retired_acceptors_.push_back(std::make_unique<Acceptor>(*this, listener));
                acceptor = retired_acceptors_.back().get();
            }
        } catch (const std::bad_alloc&) {
            acceptor = nullptr;
        }
        if (acceptor != nullptr) {
            serve_connection(*acceptor, fd);
            return;
        }
    }
    // Draining (or out of memory): the connection goes, as one accepted a moment later would.
    ::close(fd);
    listener->remove_connection();
    if (balancer_ != nullptr) balancer_->release(index_);
}

void Worker::serve_connection(Acceptor& acceptor, int fd) noexcept {
    // Echoes are written as soon as they are complete; Nagle would hold back a small echo while
    // an earlier one is unacknowledged (and meet the peer's delayed ACK).
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A peer that vanished (or keeps its window shut) while its echo is pending is given up on
    // by the kernel after send_timeout; the socket then reports ETIMEDOUT (Connection::fail).
    // Without it, the retransmissions go on for ~15 minutes holding the connection's buffers.
    if (unsigned timeout = static_cast<unsigned>(acceptor.limits().send_timeout_ms); timeout != 0) {
        ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
    }
    Connection* c = nullptr;
    try {
        c = connections_.create(acceptor, fd, loop_.now_ms());
    } catch (const std::bad_alloc&) {
        ::close(fd);
        acceptor.listener().remove_connection();
        if (balancer_ != nullptr) balancer_->release(index_);
        LOG_ERR("out of memory accepting a connection listener=%s", acceptor.listener().config().name.c_str());
        return;
    }
    acceptor.object_created();
    ++live_;
    stats_.connections_accepted.add();
    acceptor.idle().push_back(*c);
    // Registered once, for every event we will ever want; data that arrived before this call
    // is reported by the first epoll_wait (EPOLL_CTL_ADD checks readiness).
    if (int err = loop_.watch(fd, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET); err != 0) {
        LOG_ERR("epoll_ctl(ADD) failed for a new connection: %s", errno_text(err).c_str());
        c->close(Connection::CloseReason::Internal);
        return;
    }
    if (acceptor.limits().idle_timeout_ms != 0) arm_idle_timer_at(loop_.now_ms() + acceptor.limits().idle_timeout_ms);
}

void Worker::free_connection(Connection* c) noexcept {
    Acceptor& acceptor = c->acceptor();
    connections_.destroy(c);
    acceptor.object_freed();
    --live_;
    if (balancer_ != nullptr) balancer_->release(index_);
    stop_if_drained();
}

bool Worker::on_fds_exhausted(Acceptor& acceptor, bool no_reserve) noexcept {
    if (!no_reserve) stats_.accept_fd_exhausted.add();  // counts connections closed at once
    if (may_log_peer_event()) {
        LOG_WARNING("out of file descriptors: %s (existing connections are served) listener=%s",
                    no_reserve ? "not accepting for 100 ms" : "closed a new connection",
                    acceptor.listener().config().name.c_str());
    }
    if (!no_reserve) return true;
    pause_accepting(kAcceptRetrySeconds);
    return false;
}

void Worker::arm_idle_timer_at(std::uint64_t deadline_ms) noexcept {
    // Listeners may have different idle timeouts: a new connection can be due before the
    // deadline the timer is armed for.
    if (idle_timer_.active() && idle_deadline_ms_ <= deadline_ms) return;
    idle_deadline_ms_ = deadline_ms;
    std::uint64_t now = loop_.now_ms();
    double after = deadline_ms > now ? static_cast<double>(deadline_ms - now) / 1000.0 : 0.0;
    idle_timer_.start(after + 0.001);
}

void Worker::rearm_idle_timer() noexcept {
    idle_timer_.stop();
    for_each_acceptor([this](Acceptor& acceptor) {
        std::uint64_t timeout = acceptor.limits().idle_timeout_ms;
        Connection* oldest = acceptor.idle().front();
        if (timeout != 0 && oldest != nullptr) arm_idle_timer_at(oldest->last_active_ms() + timeout);
    });
}

void Worker::expire_idle() noexcept {
    std::uint64_t now = loop_.now_ms();
    for_each_acceptor([this, now](Acceptor& acceptor) {
        std::uint64_t timeout = acceptor.limits().idle_timeout_ms;
        if (timeout == 0) return;
        while (Connection* c = acceptor.idle().front()) {
            if (now - c->last_active_ms() < timeout) break;
            if (may_log_peer_event()) {
                LOG_INFO("connection closed: idle for %llu ms %s",
                         static_cast<unsigned long long>(now - c->last_active_ms()), c->log_tail().c_str());
            }
            c->close(Connection::CloseReason::IdleTimeout);
        }
    });
    prune_retired_acceptors();
    rearm_idle_timer();
}

void Worker::begin_drain() noexcept {
    draining_ = true;
    pause_accepting(0);
    if (metrics_) metrics_->stop();
    // UDP has nothing in flight to finish: stop answering at once, and close this worker's
    // socket (once all are closed, clients get "port unreachable" rather than silence).
    for (auto& echo : udp_echoes_) {
        loop_.unwatch(echo->fd());
        echo->stop();
        echo->listener().sockets()->close(index_);
    }
    accept_retry_.stop();
    close_quiet_connections();
    if (!forced_ && live_ > 0) drain_tick_.start(kDrainTickSeconds, kDrainTickSeconds);
}

void Worker::close_quiet_connections() noexcept {
    std::uint64_t now = loop_.now_ms();
    for_each_acceptor([now](Acceptor& acceptor) {
        // Oldest activity first: stop at the first connection that was active recently.
        Connection* c = acceptor.idle().front();
        while (c != nullptr && now - c->last_active_ms() >= kDrainQuietMs) {
            Connection* next = acceptor.idle().next(*c);
            if (!c->holds_data()) c->close(Connection::CloseReason::Drained);
            c = next;
        }
    });
    stop_if_drained();
}

void Worker::force_close_all() noexcept {
    for_each_acceptor([](Acceptor& acceptor) {
        while (Connection* c = acceptor.idle().front()) c->close(Connection::CloseReason::DrainForced);
    });
}

void Worker::stop_if_drained() noexcept {
    if (draining_ && live_ == 0) {
        drain_tick_.stop();
        loop_.stop();
    }
}

}  // namespace tcpecho
