#include "tools/run_threads.hpp"

namespace tcpecho::probe {

void report_progress(TimePoint start, const std::function<bool()>& all_done,
                     const std::function<void(Progress&)>& sample,
                     const std::function<void(const Progress&)>& on_progress) {
    TimePoint next_report = start + std::chrono::seconds(1);
    while (on_progress && !all_done()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const TimePoint now = Clock::now();
        if (now >= next_report) {
            Progress p{std::chrono::duration<double>(now - start).count(), 0, 0, 0, 0};
            sample(p);
            on_progress(p);
            next_report += std::chrono::seconds(1);
        }
    }
}

}  // namespace tcpecho::probe
