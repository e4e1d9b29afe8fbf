// A worker thread: one event loop, the connections it accepted, its own socket of each UDP
// listener, its buffer pool and counters.
// Workers share nothing on the data path; the main thread talks to them only through
// Async wake-ups (drain, force-close) and reads their counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/balancer.hpp"
#include "daemon/base/loop.hpp"
#include "daemon/base/stats.hpp"
#include "daemon/listener_set.hpp"
#include "daemon/metrics/metrics_endpoint.hpp"
#include "daemon/tcp/accept_gate.hpp"
#include "daemon/tcp/acceptor.hpp"
#include "daemon/tcp/buffer.hpp"
#include "daemon/tcp/connection_pool.hpp"
#include "daemon/tcp/memory_budget.hpp"
#include "daemon/tcp/tcp_context.hpp"
#include "daemon/udp/udp_echo.hpp"

namespace tcpecho {

class Worker final : public TcpContext {
public:
    // `notify_main` runs on this worker's thread when it has finished or applied a listener
    // set; it must only wake the main thread.
    Worker(unsigned index, std::shared_ptr<const ListenerSet> listeners, AcceptGate& accept_gate,
           std::function<void()> notify_main);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // With `seconds` > 0, the loop stamps last_turn_ms() that often (for the watchdog: a
    // wedged loop stops stamping). Call before start().
    void set_heartbeat(double seconds) noexcept { heartbeat_s_ = seconds; }
    // Buffer memory is charged to `budget` (shared by all workers; it must outlive this
    // worker). Without one (harnesses), buffers are not limited beyond the per-connection
    // watermarks. Call before start().
    void set_memory_budget(MemoryBudget* budget) noexcept { buffers_.set_budget(budget); }
    // Spread new connections over the workers (see Balancer): `hand_off(target, listener, fd)`
    // must pass the descriptor to worker `target`'s request_hand_off(). Call before start().
    void set_balancer(Balancer* balancer,
                      std::function<void(unsigned, std::shared_ptr<Listener>, int)> hand_off) noexcept {
        balancer_ = balancer;
        hand_off_ = std::move(hand_off);
    }
    // Serve the metrics endpoint on this worker's loop too. Call before start().
    void set_metrics(std::shared_ptr<MetricsSource> source);
    void start();
    void join();

    // Thread-safe requests from the main thread.
    void request_drain() noexcept;
    void request_force_close() noexcept;
    // Reload: serve `listeners` from now on. New connections get its modes and limits; the
    // connections already open keep theirs. Acknowledged through applied_generation().
    void request_apply(std::shared_ptr<const ListenerSet> listeners);
    // Serves `fd` (a connected stream socket; ownership passes to the worker) as a connection of
    // TCP listener number `tcp_listener_index` of the listener set applied last, with its mode
    // and limits. An index that set does not have closes the fd. For harnesses that drive a
    // real connection over a socketpair (tests/fuzz); tcpechod itself only accepts.
    void request_adopt(std::size_t tcp_listener_index, int fd);
    // Serves `fd`, accepted by another worker on `listener` and already counted against its
    // max_connections and charged to this worker by the Balancer.
    void request_hand_off(std::shared_ptr<Listener> listener, int fd);
    [[nodiscard]] std::uint64_t applied_generation() const noexcept {
        return applied_generation_.load(std::memory_order_acquire);
    }
    // CLOCK_MONOTONIC milliseconds of the loop's last heartbeat (see set_heartbeat).
    [[nodiscard]] std::uint64_t last_turn_ms() const noexcept { return last_turn_ms_.load(std::memory_order_acquire); }
    [[nodiscard]] bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
    [[nodiscard]] std::uint64_t forced_closes() const noexcept { return stats_.drain_forced_closes.get(); }
    [[nodiscard]] const WorkerStats& stats() const noexcept { return stats_; }

    [[nodiscard]] bool draining() const noexcept { return draining_; }

    // TcpContext.
    void add_connection(Acceptor& acceptor, int fd) noexcept override;
    void free_connection(Connection* c) noexcept override;
    bool on_fds_exhausted(Acceptor& acceptor, bool no_reserve) noexcept override;
    void on_memory_exhausted() noexcept override;

private:
    void run() noexcept;
    void on_control() noexcept;
    void begin_drain() noexcept;
    void close_quiet_connections() noexcept;
    void force_close_all() noexcept;
    void expire_idle() noexcept;
    void rearm_idle_timer() noexcept;
    void stop_if_drained() noexcept;
    void pause_accepting(double seconds) noexcept;
    void resume_accepting() noexcept;
    void retry_after_memory_pause() noexcept;
    void apply(std::shared_ptr<const ListenerSet> listeners) noexcept;
    void add_udp_echoes(const ListenerSet& listeners) noexcept;
    // Registers an admitted connection on this worker.
    void serve_connection(Acceptor& acceptor, int fd) noexcept;
    void take_hand_off(const std::shared_ptr<Listener>& listener, int fd) noexcept;
    // Makes the idle timer fire no later than `deadline_ms` (loop clock).
    void arm_idle_timer_at(std::uint64_t deadline_ms) noexcept;
    void prune_retired_acceptors() noexcept;
    template <class F>
    void for_each_acceptor(F&& f) {
        for (auto& a : acceptors_) f(*a);
        for (auto& a : retired_acceptors_) f(*a);
    }

    unsigned index_;
    Loop loop_;
    WorkerStats stats_;
    BufferPool buffers_;
    ConnectionPool connections_;
    std::vector<std::unique_ptr<Acceptor>> acceptors_;  // accepting, one per TCP listener
    // Acceptors of earlier listener sets that still have connections (which point to them).
    std::vector<std::unique_ptr<Acceptor>> retired_acceptors_;
    std::vector<std::unique_ptr<UdpEcho>> udp_echoes_;  // this worker's socket of each UDP listener
    std::uint64_t live_ = 0;
    std::uint64_t idle_deadline_ms_ = 0;  // what idle_timer_ is armed for
    bool draining_ = false;
    bool accepting_ = false;
    bool forced_ = false;
    bool memory_paused_ = false;  // on_memory_exhausted() until the budget has room
    std::atomic<bool> drain_requested_{false};
    std::atomic<bool> force_requested_{false};
    std::atomic<bool> finished_{false};
    std::mutex pending_mutex_;
    std::shared_ptr<const ListenerSet> pending_;  // guarded by pending_mutex_
    std::vector<std::pair<std::size_t, int>> pending_adopt_;  // guarded by pending_mutex_
    std::vector<std::pair<std::shared_ptr<Listener>, int>> pending_hand_off_;  // guarded by pending_mutex_
    Balancer* balancer_ = nullptr;
    std::function<void(unsigned, std::shared_ptr<Listener>, int)> hand_off_;
    std::atomic<std::uint64_t> applied_generation_{0};
    double heartbeat_s_ = 0;
    std::atomic<std::uint64_t> last_turn_ms_{0};
    std::function<void()> notify_main_;
    Async control_;
    Timer idle_timer_;
    Timer drain_tick_;
    Timer accept_retry_;
    Timer heartbeat_;
    Timer memory_retry_;
    std::unique_ptr<MetricsEndpoint> metrics_;  // before the loop goes: it holds a timer on it
    std::thread thread_;
};

}  // namespace tcpecho
