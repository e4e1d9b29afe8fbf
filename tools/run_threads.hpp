// The calling thread's side of a run, shared by the TCP engine (engine.cpp) and the UDP engine
// (udp_engine.cpp): start every worker thread at the same moment, publish the progress line
// while they run, join them and measure the run.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "tools/engine.hpp"
#include "tools/probe_clock.hpp"
#include "tools/probe_options.hpp"

namespace tcpecho::probe {

// Calls `on_progress` about once a second, from the calling thread, with the figures `sample`
// adds to a zeroed Progress, until `all_done()`. Returns at once when `on_progress` is empty.
void report_progress(TimePoint start, const std::function<bool()>& all_done,
                     const std::function<void(Progress&)>& sample,
                     const std::function<void(const Progress&)>& on_progress);

// Runs one worker per element of `threads` and returns the run's length in seconds: from the
// common start to the last thread's `finished_at`. `prepare(thread)` (connect, open sockets)
// runs on the worker before the clock starts, so slow setup is not counted; then every
// worker's `run(start, end)` starts together (`end` from --time). A Thread publishes
// `finished_at` before its atomic `done`. `sample(thread, progress)` adds a thread's live
// figures for the progress line.
template <class Thread, class Prepare, class Sample>
double run_threads(const Options& options, const std::vector<std::unique_ptr<Thread>>& threads, const Prepare& prepare,
                   const Sample& sample, const std::function<void(const Progress&)>& on_progress) {
    std::latch prepared(static_cast<std::ptrdiff_t>(threads.size()));
    std::latch go(1);
    TimePoint start{};
    std::optional<TimePoint> end;
    std::vector<std::thread> workers;
    workers.reserve(threads.size());
    for (const auto& t : threads) {
        workers.emplace_back([&, thread = t.get()] {
            prepare(*thread);
            prepared.count_down();
            go.wait();  // start and end are set before the latch opens
            thread->run(start, end);
        });
    }
    prepared.wait();
    start = Clock::now();
    if (options.time_us) end = start + std::chrono::microseconds(*options.time_us);
    go.count_down();

    report_progress(
        start,
        [&] {
            return std::all_of(threads.begin(), threads.end(),
                               [](const auto& t) { return t->done.load(std::memory_order_acquire); });
        },
        [&](Progress& p) {
            for (const auto& t : threads) sample(*t, p);
        },
        on_progress);
    for (auto& w : workers) w.join();
    TimePoint last = start;
    for (const auto& t : threads) last = std::max(last, t->finished_at);
    return std::chrono::duration<double>(last - start).count();
}

}  // namespace tcpecho::probe
