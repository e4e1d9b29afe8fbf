// The probe's histograms: the latency report promises <= 1% relative error in constant memory.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>
#include <algorithm>

#include "test_catch.hpp"
#include "tools/histogram.hpp"

using tcpecho::ExactCounts;
using tcpecho::LogLinearHistogram;

TEST_CASE("histogram: buckets tile the range with at most 1/128 relative width", "[histogram]") {
    for (std::size_t i = 0; i + 1 < LogLinearHistogram::kBuckets; ++i) {
        REQUIRE(LogLinearHistogram::highest_of(i) + 1 == LogLinearHistogram::lowest_of(i + 1));
        std::uint64_t low = LogLinearHistogram::lowest_of(i);
        std::uint64_t width = LogLinearHistogram::highest_of(i) - low + 1;
        // Exact below 128 (one value per bucket), then at most 1/128 of the bucket's low end.
        if (width > 1) REQUIRE(static_cast<double>(width) / static_cast<double>(low) <= 1.0 / 128);
    }
    for (std::uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 129ULL, 255ULL, 256ULL, 65482ULL, 1ULL << 40, ~0ULL}) {
        std::size_t i = LogLinearHistogram::index_of(v);
        REQUIRE(i < LogLinearHistogram::kBuckets);
        REQUIRE(LogLinearHistogram::lowest_of(i) <= v);
        REQUIRE(v <= LogLinearHistogram::highest_of(i));
    }
}

TEST_CASE("histogram: quantiles within 1% of the exact ones", "[histogram]") {
    std::mt19937_64 rng(42);
    std::lognormal_distribution<double> dist(11.0, 1.5);  // ~60 us median, long tail (ns)
    std::vector<std::uint64_t> values;
    LogLinearHistogram h;
    for (int i = 0; i < 100'000; ++i) {
        auto v = static_cast<std::uint64_t>(dist(rng)) + 1;
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
        std::uint64_t exact = values[rank == 0 ? 0 : rank - 1];
        double error = std::fabs(static_cast<double>(h.quantile(q)) - static_cast<double>(exact)) /
                       static_cast<double>(exact);
        INFO("q=" << q << " exact=" << exact << " histogram=" << h.quantile(q));
        REQUIRE(error <= 0.01);
    }
    REQUIRE(h.min() == values.front());
    REQUIRE(h.max() == values.back());
    REQUIRE(h.count() == values.size());
}

TEST_CASE("histogram: merge equals recording everything in one", "[histogram]") {
    LogLinearHistogram a, b, all;
    for (std::uint64_t v = 1; v < 5000; v += 7) {
        (v % 2 == 0 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    for (double q : {0.1, 0.5, 0.99}) REQUIRE(a.quantile(q) == all.quantile(q));
    REQUIRE(a.count() == all.count());
    REQUIRE(a.min() == all.min());
    REQUIRE(a.max() == all.max());
    REQUIRE(LogLinearHistogram().quantile(0.5) == 0);
}

TEST_CASE("histogram: power-of-two bins sum to the count", "[histogram]") {
    LogLinearHistogram h;
    h.record(0);
    h.record(1);
    h.record(65482, 3);
    h.record(65536, 2);
    auto bins = h.power_of_two_bins();
    REQUIRE(bins.size() == 4);
    REQUIRE(bins[2].low == 32768);
    REQUIRE(bins[2].high == 65535);
    REQUIRE(bins[2].count == 3);
    REQUIRE(bins[3].low == 65536);
    REQUIRE(bins[3].count == 2);
}

TEST_CASE("exact counts: most frequent first, bounded memory", "[histogram]") {
    ExactCounts c;
    c.record(65482);
    c.record(1024, 5);
    c.record(65483, 2);
    auto top = c.top(2);
    REQUIRE(top.size() == 2);
    REQUIRE(top[0].value == 1024);
    REQUIRE(top[1].value == 65483);
    for (std::uint64_t v = 0; v < 1000; ++v) c.record(100'000 + v);
    REQUIRE(c.other() == 1000 - (ExactCounts::kSlots - 3));
}
