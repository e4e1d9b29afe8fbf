// Constant-memory histograms for the probe's report.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tcpecho {

// Log-linear (HdrHistogram-style) histogram of unsigned values: exact below 128, above that
// 128 linear sub-buckets per power of two, so a reported value is within 1/256 (< 0.4%) of
// a recorded one. 7,424 counters (58 KiB) cover the whole uint64 range: no configuration, no
// allocation while recording.
class LogLinearHistogram {
public:
    static constexpr unsigned kSubBits = 7;
    static constexpr std::uint64_t kSub = 1ULL << kSubBits;  // 128
    static constexpr std::size_t kBuckets = kSub + (64 - kSubBits) * kSub;

    LogLinearHistogram() : counts_(kBuckets, 0) {}

    void record(std::uint64_t value, std::uint64_t times = 1) noexcept {
        counts_[index_of(value)] += times;
        if (count_ == 0 || value < min_) min_ = value;
        if (value > max_) max_ = value;
        count_ += times;
        sum_ += static_cast<double>(value) * static_cast<double>(times);
    }

    void merge(const LogLinearHistogram& other) noexcept {
        if (other.count_ == 0) return;
        for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
        if (count_ == 0 || other.min_ < min_) min_ = other.min_;
        if (other.max_ > max_) max_ = other.max_;
        count_ += other.count_;
        sum_ += other.sum_;
    }

    [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
    [[nodiscard]] std::uint64_t min() const noexcept { return min_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] double mean() const noexcept { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

    // The value at quantile q in [0, 1] (rank ceil(q * count), at least 1): the middle of its
    // bucket, clamped to the exact min and max. 0 when empty.
    [[nodiscard]] std::uint64_t quantile(double q) const noexcept {
        if (count_ == 0) return 0;
        double wanted = q * static_cast<double>(count_);
        auto rank = static_cast<std::uint64_t>(wanted);
        if (static_cast<double>(rank) < wanted) ++rank;
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < kBuckets; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                std::uint64_t mid = lowest_of(i) + (highest_of(i) - lowest_of(i)) / 2;
                return mid < min_ ? min_ : mid > max_ ? max_ : mid;
            }
        }
        return max_;
    }

    struct Bin {
        std::uint64_t low;
        std::uint64_t high;  // inclusive
        std::uint64_t count;
    };
    // Non-empty power-of-two bins [2^k, 2^(k+1) - 1] (and [0, 0]): a coarse view for reports.
    [[nodiscard]] std::vector<Bin> power_of_two_bins() const {
        std::vector<Bin> bins;
        for (std::size_t i = 0; i < kBuckets; ++i) {
            if (counts_[i] == 0) continue;
            std::uint64_t low = lowest_of(i);
            std::uint64_t bin_low = low == 0 ? 0 : std::bit_floor(low);
            std::uint64_t bin_high = low == 0 ? 0 : bin_low + (bin_low - 1);
            if (!bins.empty() && bins.back().low == bin_low) {
                bins.back().count += counts_[i];
            } else {
                bins.push_back({bin_low, bin_high, counts_[i]});
            }
        }
        return bins;
    }

    // Calls f(lowest, highest, count) for each non-empty bucket, lowest values first.
    template <class F>
    void for_each_bucket(F&& f) const {
        for (std::size_t i = 0; i < kBuckets; ++i) {
            if (counts_[i] != 0) f(lowest_of(i), highest_of(i), counts_[i]);
        }
    }

    static std::size_t index_of(std::uint64_t value) noexcept {
        if (value < kSub) return static_cast<std::size_t>(value);
        unsigned shift = static_cast<unsigned>(std::bit_width(value)) - 1 - kSubBits;
        return static_cast<std::size_t>(kSub + shift * kSub + ((value >> shift) - kSub));
    }
    static std::uint64_t lowest_of(std::size_t index) noexcept {
        if (index < kSub) return index;
        std::size_t shift = (index - kSub) / kSub;
        std::uint64_t mantissa = kSub + (index - kSub) % kSub;
        return mantissa << shift;
    }
    static std::uint64_t highest_of(std::size_t index) noexcept {
        if (index < kSub) return index;
        std::size_t shift = (index - kSub) / kSub;
        return lowest_of(index) + ((1ULL << shift) - 1);
    }

private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t min_ = 0;
    std::uint64_t max_ = 0;
    double sum_ = 0;
};

// The most frequent exact values among the first kSlots distinct ones seen (later new values
// are counted as "other"): shows at a glance that loopback reads come back as 65482 or 65483.
class ExactCounts {
public:
    static constexpr std::size_t kSlots = 64;
    struct Entry {
        std::uint64_t value;
        std::uint64_t count;
    };

    void record(std::uint64_t value, std::uint64_t times = 1) noexcept {
        for (std::size_t i = 0; i < used_; ++i) {
            if (entries_[i].value == value) {
                entries_[i].count += times;
                return;
            }
        }
        if (used_ < kSlots) {
            entries_[used_++] = {value, times};
        } else {
            other_ += times;
        }
    }
    void merge(const ExactCounts& other) noexcept {
        for (std::size_t i = 0; i < other.used_; ++i) record(other.entries_[i].value, other.entries_[i].count);
        other_ += other.other_;
    }
    // Up to n entries, most frequent first (ties: smaller value first).
    [[nodiscard]] std::vector<Entry> top(std::size_t n) const {
        std::vector<Entry> sorted(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(used_));
        std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
            return a.count != b.count ? a.count > b.count : a.value < b.value;
        });
        if (sorted.size() > n) sorted.resize(n);
        return sorted;
    }
    [[nodiscard]] std::uint64_t other() const noexcept { return other_; }

private:
    std::array<Entry, kSlots> entries_{};
    std::size_t used_ = 0;
    std::uint64_t other_ = 0;
};

}  // namespace tcpecho
