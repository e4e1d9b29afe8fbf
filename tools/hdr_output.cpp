#include "tools/hdr_output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <vector>

namespace tcpecho::probe {

namespace {

constexpr double kNsPerMs = 1e6;
constexpr int kTicksPerHalfDistance = 5;  // HdrHistogram's default

__attribute__((format(printf, 2, 3))) void append(std::string& out, const char* format, ...) {
    char line[160];
    va_list args;
    va_start(args, format);
    std::vsnprintf(line, sizeof line, format, args);
    va_end(args);
    out += line;
}

}  // namespace

std::string hdr_percentile_distribution(const tcpecho::LogLinearHistogram& h) {
    struct Step {
        std::uint64_t highest;  // the bucket's highest value: HdrHistogram reports that
        std::uint64_t cumulative;
    };
    std::vector<Step> steps;
    double sum_sq = 0;
    std::uint64_t cumulative = 0;
    h.for_each_bucket([&](std::uint64_t low, std::uint64_t high, std::uint64_t count) {
        cumulative += count;
        steps.push_back({high, cumulative});
        const double mid = (static_cast<double>(low) + static_cast<double>(high)) / 2 / kNsPerMs;
        sum_sq += mid * mid * static_cast<double>(count);
    });
    const std::uint64_t total = h.count();
    const double max_ms = static_cast<double>(h.max()) / kNsPerMs;
    auto value_ms = [&](const Step& s) { return static_cast<double>(std::min(s.highest, h.max())) / kNsPerMs; };

    std::string out;
    append(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if (total != 0) {
        // HdrHistogram's percentile iteration: from 0 %, in steps that halve with each
        // halving of the distance to 100 %, each row at the first value whose cumulative
        // count reaches that percentile; the last row is 100 %.
        double percentile = 0;
        std::size_t at = 0;
        // Bounded: the steps shrink geometrically, so with a huge count the percentile could
        // stop moving in floating point before it passes the last bucket but one.
        for (int rows = 0; rows < 10'000; ++rows) {
            while (at + 1 < steps.size() &&
                   static_cast<double>(steps[at].cumulative) * 100.0 / static_cast<double>(total) < percentile) {
                ++at;
            }
            if (steps[at].cumulative == total) break;  // the rest is the 100 % row
            append(out, "%12.3f %2.12f %10llu %14.2f\n", value_ms(steps[at]), percentile / 100.0,
                   static_cast<unsigned long long>(steps[at].cumulative), 1.0 / (1.0 - percentile / 100.0));
            const double ticks = kTicksPerHalfDistance * std::pow(2.0, std::floor(std::log2(100.0 / (100.0 - percentile))) + 1);
            percentile += 100.0 / ticks;
        }
        append(out, "%12.3f %2.12f %10llu\n", max_ms, 1.0, static_cast<unsigned long long>(total));
    }
    const double mean_ms = h.mean() / kNsPerMs;
    const double variance = total == 0 ? 0 : std::max(0.0, sum_sq / static_cast<double>(total) - mean_ms * mean_ms);
    append(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean_ms, std::sqrt(variance));
    append(out, "#[Max     = %12.3f, Total count    = %12llu]\n", max_ms, static_cast<unsigned long long>(total));
    append(out, "#[Buckets = %12zu, SubBuckets     = %12llu]\n", steps.size(),
           static_cast<unsigned long long>(LogLinearHistogram::kSub));
    return out;
}

}  // namespace tcpecho::probe
