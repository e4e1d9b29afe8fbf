// The event loop of one thread: libev (timers, signals, cross-thread wake-ups) plus, on worker
// threads, an epoll set of our own in which connection sockets are registered once,
// edge-triggered. libev's ev_io is level-triggered and never sets EPOLLET (libev(3), "ev_io"),
// which is why the sockets do not go through it. Our set is the one blocking wait (one
// epoll_wait per iteration); libev runs without blocking only when one of its timers is due
// or a cross-thread wake-up arrived. (Nesting our set inside libev instead was measured and
// dropped: docs/performance.md, "Loop strategies".)
//
// This is the only unit that includes <ev.h>.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "lib/intrusive_list.hpp"

struct ev_loop;

namespace tcpecho {

struct ReadyTag;

// Something registered in a worker's edge-triggered epoll set. The loop does not own it.
class IoHandler : private ListNode<ReadyTag> {
public:
    // `events`: the epoll event mask of this edge.
    virtual void on_io(std::uint32_t events) noexcept = 0;
    // Called from the ready list (see Loop::defer): the handler had more work than one
    // wake-up's budget allows, and the kernel will not report that edge again.
    virtual void on_ready() noexcept {}

    virtual ~IoHandler() = default;

protected:
    IoHandler() = default;
    IoHandler(const IoHandler&) = default;
    IoHandler& operator=(const IoHandler&) = default;

    [[nodiscard]] bool ready_queued() const noexcept { return ListNode<ReadyTag>::linked(); }

private:
    friend class Loop;
    friend class IntrusiveList<IoHandler, ReadyTag>;
};

class Loop {
public:
    enum class Kind : std::uint8_t {
        Control,  // the main thread: signals and coordination; libev's default loop
        Worker,   // a worker thread: connection sockets in an ET epoll set
    };

    explicit Loop(Kind kind);
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // Adds `fd` to the edge-triggered set with `events` (EPOLLET is the caller's choice, so a
    // listener can stay level-triggered). Returns 0, or the errno of a failed epoll_ctl.
    [[nodiscard]] int watch(int fd, IoHandler* handler, std::uint32_t events) noexcept;
    // Removes `fd` from the set; call before close() (a dup'd fd would otherwise stay in it).
    void unwatch(int fd) noexcept;

    // Queues `handler` to get on_ready() after this iteration's events. Idempotent.
    void defer(IoHandler* handler) noexcept;
    // Takes `handler` off the ready list (before destroying a handler that may be queued).
    void cancel_deferred(IoHandler* handler) noexcept;

    // Runs until stop() is called from a callback on this loop's thread.
    void run();
    void stop() noexcept;

    // Monotonic milliseconds, refreshed once per iteration (cheap to ask on the data path).
    [[nodiscard]] std::uint64_t now_ms() const noexcept { return now_ms_; }

private:
    friend class Timer;
    friend class Async;
    friend class SignalWatcher;

    void dispatch(int timeout_ms);
    void run_ready() noexcept;
    void refresh_now() noexcept;
    [[nodiscard]] int timer_timeout_ms() const noexcept;
    [[nodiscard]] bool timer_due() const noexcept;

    Kind kind_;
    ::ev_loop* ev_ = nullptr;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;  // eventfd in the ET set: wakes the outer epoll_wait for cross-thread sends
    bool stopping_ = false;
    std::uint64_t now_ms_ = 0;
    double now_s_ = 0;  // the same instant, for the timer deadline comparison
    double next_timer_deadline_ = 0;  // monotonic seconds; 0 = no timer armed
    IntrusiveList<IoHandler, ReadyTag> ready_;
    std::vector<class Timer*> timers_;
};

// A libev timer on `loop`; `callback` runs on the loop's thread.
class Timer {
public:
    Timer(Loop& loop, std::function<void()> callback);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Fires after `after_s` seconds, then every `repeat_s` seconds if non-zero. Restarts if active.
    void start(double after_s, double repeat_s = 0);
    void stop() noexcept;
    [[nodiscard]] bool active() const noexcept;
    // Seconds until it fires (libev's view of now); only meaningful when active.
    [[nodiscard]] double remaining() const noexcept;

private:
    struct Watcher;
    Loop& loop_;
    std::function<void()> callback_;
    std::unique_ptr<Watcher> w_;
};

// A cross-thread wake-up (ev_async): send() from any thread, `callback` runs on the loop's thread.
// Several sends before the callback runs are coalesced into one call.
class Async {
public:
    Async(Loop& loop, std::function<void()> callback);
    ~Async();
    Async(const Async&) = delete;
    Async& operator=(const Async&) = delete;

    void send() noexcept;

private:
    struct Watcher;
    Loop& loop_;
    std::function<void()> callback_;
    std::unique_ptr<Watcher> w_;
};

// A signal watcher (Control loop only): the signal is blocked and read from a signalfd.
class SignalWatcher {
public:
    SignalWatcher(Loop& loop, int signum, std::function<void()> callback);
    ~SignalWatcher();
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

private:
    struct Watcher;
    Loop& loop_;
    std::function<void()> callback_;
    std::unique_ptr<Watcher> w_;
};

}  // namespace tcpecho
