// The event loop both probe engines run on (TCP sessions, engine.cpp; UDP flows,
// udp_engine.cpp): one thread's epoll set over its items' sockets, a ready list for items
// with work left, one timer per item, and a wait with the nanosecond precision the probe's
// pacing (--rate) and deadlines need. Items are indices 0..items-1 into the engine's own
// vector. Failures come back as errno values (0: it worked); the engine words them.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <span>
#include <utility>
#include <vector>

#include "lib/fd.hpp"
#include "tools/probe_clock.hpp"

namespace tcpecho::probe {

class ProbeLoop {
public:
    using Item = std::uint32_t;

    // Creates the epoll set for `items` items, all active. 0, or the errno of epoll_create1.
    [[nodiscard]] int open(std::size_t items);

    // The epoll set: `events` (EPOLLIN...) of `fd` are reported for `item`. 0, or the errno of
    // epoll_ctl.
    [[nodiscard]] int watch(int fd, Item item, std::uint32_t events) noexcept;
    [[nodiscard]] int rewatch(int fd, Item item, std::uint32_t events) noexcept;
    // Before `fd` is closed.
    void unwatch(int fd) noexcept;

    // Counts `item` as finished, once: true the first time. The loop runs while active() > 0.
    bool count_finished(Item item) noexcept;
    [[nodiscard]] std::size_t active() const noexcept { return active_; }

    // Items with work left after a bounded round (their edge will not repeat): the next wait
    // does not block. Marking an item twice queues it once.
    void mark_ready(Item item);
    // The items marked ready, now unmarked: those marked again while the caller goes through
    // the batch come back in the next one. Valid until the next call.
    [[nodiscard]] const std::vector<Item>& take_ready();

    // The item's timer, replaced by `due` when it differs (later too); TimePoint::max() keeps
    // the one queued. A replaced timer is skipped when it comes up.
    void set_timer(Item item, TimePoint due);
    // The item's timer, moved only earlier: a later `due` is left for the caller to find when
    // the queued timer fires.
    void advance_timer(Item item, TimePoint due);
    // The next item whose timer is at or before `now` (it is then disarmed); none when no
    // more are due.
    [[nodiscard]] std::optional<Item> pop_expired(TimePoint now);

    // What one wait reported: the events (epoll_event::data.u32 is the item), or the errno
    // of a wait that failed. An interrupted wait (EINTR) is no error, only no events: the
    // caller checks its signal flags after every wait.
    struct Wait {
        int error;
        std::span<const epoll_event> events;
    };
    // Waits for events until the earliest timer or `wake_by`, whichever comes first; does
    // not block while an item is ready.
    [[nodiscard]] Wait wait(TimePoint wake_by);

private:
    // Like epoll_wait(), but `timeout` (<= 0: do not block) in nanoseconds.
    Wait wait_for(std::chrono::nanoseconds timeout) noexcept;

    static constexpr int kMaxEvents = 256;
    using Due = std::pair<TimePoint, Item>;

    UniqueFd epoll_;
    bool have_pwait2_ = true;
    std::array<epoll_event, kMaxEvents> events_{};

    std::vector<char> finished_;
    std::size_t active_ = 0;

    std::vector<Item> ready_;
    std::vector<Item> batch_;
    std::vector<char> in_ready_;

    std::vector<TimePoint> queued_due_;  // per item: its live timer, TimePoint::max() if none
    std::priority_queue<Due, std::vector<Due>, std::greater<>> timers_;
};

}  // namespace tcpecho::probe
