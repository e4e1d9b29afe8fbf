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

#include "accept_gate.hpp"
#include "buffer.hpp"
#include "connection.hpp"
#include "fd.hpp"
#include "listener.hpp"
#include "listener_set.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "memory_budget.hpp"
#include "stats.hpp"
#include "udp_echo.hpp"
#include "udp_listener.hpp"

namespace tcpecho {

class Worker;

// Connections of one slot, least recently active first (libev(3), "Be smart about timeouts",
// method 4: one timer per worker instead of one per connection).
class IdleList {
public:
    void push_back(Connection* c) noexcept;
    void remove(Connection* c) noexcept;
    void move_to_back(Connection* c) noexcept {
        if (tail_ == c) return;
        remove(c);
        push_back(c);
    }
    [[nodiscard]] Connection* front() const noexcept { return head_; }
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

private:
    Connection* head_ = nullptr;
    Connection* tail_ = nullptr;
};

// A worker's view of one listener: it accepts from the shared socket and keeps this
// worker's connections of that listener.
class ListenerSlot final : public IoHandler {
public:
    ListenerSlot(Worker& worker, std::shared_ptr<Listener> listener);
    ~ListenerSlot() override = default;
    ListenerSlot(const ListenerSlot&) = delete;
    ListenerSlot& operator=(const ListenerSlot&) = delete;

    void on_io(std::uint32_t events) noexcept override;

    [[nodiscard]] Worker& worker() const noexcept { return *worker_; }
    [[nodiscard]] Listener& listener() const noexcept { return *listener_; }
    [[nodiscard]] const Limits& limits() const noexcept { return listener_->config().limits; }
    [[nodiscard]] std::size_t max_buffer() const noexcept { return max_buffer_; }
    IdleList& idle() noexcept { return idle_; }
    // Connection objects of this slot, closed ones waiting on the ready list included: a
    // retired slot (see Worker::apply) is freed only at 0, as they point to it.
    void object_created() noexcept { ++objects_; }
    void object_freed() noexcept { --objects_; }
    [[nodiscard]] bool unused() const noexcept { return objects_ == 0; }

private:
    Worker* worker_;
    std::shared_ptr<Listener> listener_;
    IdleList idle_;
    std::size_t objects_ = 0;
    std::size_t max_buffer_;  // output_high_watermark + largest frame + one read
};

// Fixed-size slab allocator for Connection objects: no malloc header per connection and good
// locality; idle connections cost sizeof(Connection) bytes of user space.
class ConnectionPool {
public:
    ConnectionPool() = default;
    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    [[nodiscard]] Connection* create(ListenerSlot& slot, int fd, std::uint64_t now_ms);
    void destroy(Connection* c) noexcept;

private:
    static constexpr std::size_t kPerChunk = 512;
    union Cell;
    std::vector<std::unique_ptr<Cell[]>> chunks_;
    Cell* free_ = nullptr;
};

class Worker {
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
    [[nodiscard]] std::uint64_t applied_generation() const noexcept {
        return applied_generation_.load(std::memory_order_acquire);
    }
    // CLOCK_MONOTONIC milliseconds of the loop's last heartbeat (see set_heartbeat).
    [[nodiscard]] std::uint64_t last_turn_ms() const noexcept { return last_turn_ms_.load(std::memory_order_acquire); }
    [[nodiscard]] bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
    [[nodiscard]] std::uint64_t forced_closes() const noexcept { return stats_.drain_forced_closes.get(); }
    [[nodiscard]] const WorkerStats& stats() const noexcept { return stats_; }

    // For connections and slots on this worker's thread.
    Loop& loop() noexcept { return loop_; }
    WorkerStats& counters() noexcept { return stats_; }
    BufferPool& buffers() noexcept { return buffers_; }
    // Budget for log lines a peer can trigger (see LogRateLimit).
    [[nodiscard]] bool may_log_peer_event() noexcept { return peer_log_.allow(loop_.now_ms()); }
    [[nodiscard]] bool draining() const noexcept { return draining_; }

    void add_connection(ListenerSlot& slot, int fd) noexcept;
    void free_connection(Connection* c) noexcept;
    // Makes the idle timer fire no later than `deadline_ms` (loop clock).
    void arm_idle_timer_at(std::uint64_t deadline_ms) noexcept;
    AcceptGate& accept_gate() noexcept { return accept_gate_; }
    // Out of file descriptors: count and log; with `no_reserve`, also stop accepting briefly
    // (no spinning on a level-triggered listener). Returns whether accepting may go on.
    bool on_fds_exhausted(ListenerSlot& slot, bool no_reserve) noexcept;
    // max_buffer_memory reached (a connection could not get buffer memory, or the budget was
    // full at accept time): stop accepting, and poll until the budget has room again.
    void on_memory_exhausted() noexcept;
    [[nodiscard]] bool memory_exhausted() const noexcept {
        return buffers_.budget() != nullptr && buffers_.budget()->exhausted();
    }

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
    void add_udp_slots(const ListenerSet& listeners) noexcept;
    void prune_retired_slots() noexcept;
    template <class F>
    void for_each_slot(F&& f) {
        for (auto& slot : slots_) f(*slot);
        for (auto& slot : retired_slots_) f(*slot);
    }

    unsigned index_;
    Loop loop_;
    WorkerStats stats_;
    BufferPool buffers_;
    ConnectionPool connections_;
    std::vector<std::unique_ptr<ListenerSlot>> slots_;  // accepting, one per TCP listener
    // Slots of earlier listener sets that still have connections (which point to them).
    std::vector<std::unique_ptr<ListenerSlot>> retired_slots_;
    std::vector<std::unique_ptr<UdpEchoSlot>> udp_slots_;  // this worker's socket of each UDP listener
    AcceptGate& accept_gate_;
    LogRateLimit peer_log_{20};
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
    std::thread thread_;
};

}  // namespace tcpecho
