// Reproducible pseudo-random byte streams: a sender generates them, a verifier regenerates the
// same stream and compares, so memory stays O(1) whatever the volume. Shared by the probe and
// the tests.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tcpecho {

// GCC and Clang on 64-bit targets; __extension__ keeps -Wpedantic quiet about it.
__extension__ using uint128_t = unsigned __int128;

// splitmix64's output function (Steele, Lea, Flood 2014): turns a counter into a well-mixed
// 64-bit value. Seeds per connection and message sizes come from it.
inline constexpr std::uint64_t kSplitMixGamma = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t splitmix64(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Counter-based: word i of the stream is mix(key + (i + 1) * kGamma), so any offset can be
// reached in O(1) (a sender rewinds after a partial send instead of buffering what the kernel
// did not take) and words are independent, so fill and verify run at memory speed. The mixer
// is the 64x64->128-bit multiply-fold used by wyrand: one multiply per 8 bytes, and it passes
// the usual statistical batteries, which is far more than a verifier needs — what matters is
// that a dropped, duplicated or swapped chunk never lines up with the expected bytes.
class PayloadStream {
public:
    // avoid_newline: line mode payloads must not contain the delimiter.
    explicit PayloadStream(std::uint64_t seed, bool avoid_newline = false) noexcept
        : key_(seed * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL), avoid_newline_(avoid_newline) {}

    void fill(std::byte* out, std::size_t n) noexcept {
        if (avoid_newline_) {
            fill_impl<true>(out, n);
        } else {
            fill_impl<false>(out, n);
        }
    }

    // Compares `got` with the next bytes of the stream. Returns the index of the first
    // mismatch in `got` (the stream then stands at that byte), or n when all match.
    std::size_t verify(const std::byte* got, std::size_t n) noexcept {
        return avoid_newline_ ? verify_impl<true>(got, n) : verify_impl<false>(got, n);
    }

    void skip(std::uint64_t n) noexcept { offset_ += n; }
    void seek(std::uint64_t offset) noexcept { offset_ = offset; }
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

private:
    static constexpr std::uint64_t kGamma = 0xa0761d6478bd642fULL;
    static constexpr std::uint64_t kFold = 0xe7037ed1a0b428dbULL;
    // Every byte gets bit 5 set, so none can be '\n' (0x0a has it clear): one OR per 8 bytes.
    // Line-mode payloads thus carry 7 random bits per byte, plenty to catch any misplacement.
    static constexpr std::uint64_t kNoNewline = 0x2020202020202020ULL;

    // The counter for word i is key + (i + 1) * kGamma; loops step it by kGamma.
    template <bool Line>
    static std::uint64_t mix(std::uint64_t x) noexcept {
        uint128_t product = static_cast<uint128_t>(x) * (x ^ kFold);
        std::uint64_t w = static_cast<std::uint64_t>(product >> 64) ^ static_cast<std::uint64_t>(product);
        return Line ? w | kNoNewline : w;
    }
    [[nodiscard]] std::uint64_t counter(std::uint64_t word_index) const noexcept {
        return key_ + (word_index + 1) * kGamma;
    }

    // Locals throughout: stores through std::byte* may alias *this, so members would be
    // reloaded on every word.
    template <bool Line>
    void fill_impl(std::byte* out, std::size_t n) noexcept {
        std::uint64_t offset = offset_;
        std::size_t lane = offset % 8;
        if (lane != 0 && n > 0) {
            std::uint64_t w = mix<Line>(counter(offset / 8));
            std::size_t take = n < 8 - lane ? n : 8 - lane;
            std::memcpy(out, reinterpret_cast<const std::byte*>(&w) + lane, take);
            out += take;
            n -= take;
            offset += take;
        }
        std::uint64_t x = counter(offset / 8);
        const std::size_t words = n / 8;
        for (std::size_t i = 0; i < words; ++i) {
            std::uint64_t w = mix<Line>(x);
            std::memcpy(out + i * 8, &w, 8);
            x += kGamma;
        }
        out += words * 8;
        n -= words * 8;
        if (n > 0) {
            std::uint64_t w = mix<Line>(x);
            std::memcpy(out, &w, n);
        }
        offset_ = offset + words * 8 + n;
    }

    template <bool Line>
    std::size_t verify_impl(const std::byte* got, std::size_t n) noexcept {
        const std::uint64_t start = offset_;
        std::size_t done = 0;
        std::size_t lane = start % 8;
        if (lane != 0 && n > 0) {
            std::uint64_t w = mix<Line>(counter(start / 8));
            std::size_t take = n < 8 - lane ? n : 8 - lane;
            const auto* expect = reinterpret_cast<const std::byte*>(&w) + lane;
            for (std::size_t i = 0; i < take; ++i) {
                if (expect[i] != got[i]) {
                    offset_ = start + i;
                    return i;
                }
            }
            done = take;
        }
        std::uint64_t x = counter((start + done) / 8);
        // Four words per step, OR-folded, so the common all-equal case has one branch per 32 bytes.
        while (n - done >= 32) {
            std::uint64_t g0, g1, g2, g3;
            std::memcpy(&g0, got + done, 8);
            std::memcpy(&g1, got + done + 8, 8);
            std::memcpy(&g2, got + done + 16, 8);
            std::memcpy(&g3, got + done + 24, 8);
            std::uint64_t diff = (g0 ^ mix<Line>(x)) | (g1 ^ mix<Line>(x + kGamma)) |
                                 (g2 ^ mix<Line>(x + 2 * kGamma)) | (g3 ^ mix<Line>(x + 3 * kGamma));
            if (diff != 0) break;
            done += 32;
            x += 4 * kGamma;
        }
        while (n - done >= 8) {
            std::uint64_t g;
            std::memcpy(&g, got + done, 8);
            std::uint64_t diff = g ^ mix<Line>(x);
            if (diff != 0) {
                // Little-endian: the lowest set bit is in the first differing byte.
                std::size_t at = done + static_cast<std::size_t>(std::countr_zero(diff)) / 8;
                offset_ = start + at;
                return at;
            }
            done += 8;
            x += kGamma;
        }
        if (done < n) {
            std::uint64_t w = mix<Line>(x);
            const auto* expect = reinterpret_cast<const std::byte*>(&w);
            for (std::size_t i = 0; done + i < n; ++i) {
                if (expect[i] != got[done + i]) {
                    offset_ = start + done + i;
                    return done + i;
                }
            }
        }
        offset_ = start + n;
        return n;
    }

    std::uint64_t key_;
    std::uint64_t offset_ = 0;
    bool avoid_newline_;
};

}  // namespace tcpecho
