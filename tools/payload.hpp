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

// Counter-based: word i of the stream is mix(key + (i + 1) * kGamma), so any offset can be
// reached in O(1) (a sender rewinds after a partial send instead of buffering what the kernel
// did not take) and words are independent, so fill and verify run at memory speed. The mixer
// is the 64x64->128-bit multiply-fold used by wyrand: one multiply per 8 bytes, and it passes
// the usual statistical batteries, which is far more than a verifier needs — what matters is
// that a dropped, duplicated or swapped chunk never lines up with the expected bytes.
class PayloadStream {
public:
    // avoid_newline: map '\n' to 'N' (line mode payloads must not contain the delimiter).
    explicit PayloadStream(std::uint64_t seed, bool avoid_newline = false) noexcept
        : key_(seed * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL), avoid_newline_(avoid_newline) {}

    void fill(std::byte* out, std::size_t n) noexcept {
        std::size_t lane = offset_ % 8;
        if (lane != 0 && n > 0) {
            std::uint64_t w = word(offset_ / 8);
            std::size_t take = n < 8 - lane ? n : 8 - lane;
            std::memcpy(out, reinterpret_cast<const std::byte*>(&w) + lane, take);
            out += take;
            n -= take;
            offset_ += take;
        }
        std::uint64_t index = offset_ / 8;
        std::size_t words = n / 8;
        for (std::size_t i = 0; i < words; ++i) {
            std::uint64_t w = word(index + i);
            std::memcpy(out + i * 8, &w, 8);
        }
        out += words * 8;
        offset_ += words * 8;
        n -= words * 8;
        if (n > 0) {
            std::uint64_t w = word(offset_ / 8);
            std::memcpy(out, &w, n);
            offset_ += n;
        }
    }

    // Compares `got` with the next bytes of the stream. Returns the index of the first
    // mismatch in `got` (the stream then stands at that byte), or n when all match.
    std::size_t verify(const std::byte* got, std::size_t n) noexcept {
        std::size_t done = 0;
        std::size_t lane = offset_ % 8;
        if (lane != 0 && n > 0) {
            std::uint64_t w = word(offset_ / 8);
            std::size_t take = n < 8 - lane ? n : 8 - lane;
            const auto* expect = reinterpret_cast<const std::byte*>(&w) + lane;
            for (std::size_t i = 0; i < take; ++i) {
                if (expect[i] != got[i]) {
                    offset_ += i;
                    return i;
                }
            }
            done = take;
            offset_ += take;
        }
        // Four words per step, OR-folded, so the common all-equal case has one branch per 32 bytes.
        std::uint64_t index = offset_ / 8;
        while (n - done >= 32) {
            std::uint64_t g[4];
            std::memcpy(g, got + done, 32);
            std::uint64_t diff = (g[0] ^ word(index)) | (g[1] ^ word(index + 1)) | (g[2] ^ word(index + 2)) |
                                 (g[3] ^ word(index + 3));
            if (diff != 0) break;
            done += 32;
            index += 4;
            offset_ += 32;
        }
        while (n - done >= 8) {
            std::uint64_t g;
            std::memcpy(&g, got + done, 8);
            std::uint64_t diff = g ^ word(index);
            if (diff != 0) {
                // Little-endian: the lowest set bit is in the first differing byte.
                std::size_t at = static_cast<std::size_t>(std::countr_zero(diff)) / 8;
                offset_ += at;
                return done + at;
            }
            done += 8;
            index += 1;
            offset_ += 8;
        }
        if (done < n) {
            std::uint64_t w = word(index);
            const auto* expect = reinterpret_cast<const std::byte*>(&w);
            for (std::size_t i = 0; done + i < n; ++i) {
                if (expect[i] != got[done + i]) {
                    offset_ += i;
                    return done + i;
                }
            }
            offset_ += n - done;
        }
        return n;
    }

    void skip(std::uint64_t n) noexcept { offset_ += n; }
    void seek(std::uint64_t offset) noexcept { offset_ = offset; }
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

private:
    static constexpr std::uint64_t kGamma = 0xa0761d6478bd642fULL;
    static constexpr std::uint64_t kFold = 0xe7037ed1a0b428dbULL;

    [[nodiscard]] std::uint64_t word(std::uint64_t index) const noexcept {
        std::uint64_t x = key_ + (index + 1) * kGamma;
        uint128_t product = static_cast<uint128_t>(x) * (x ^ kFold);
        std::uint64_t w = static_cast<std::uint64_t>(product >> 64) ^ static_cast<std::uint64_t>(product);
        return avoid_newline_ ? without_newlines(w) : w;
    }

    // Branch-free: find the bytes equal to '\n' (exact zero-byte test on w ^ 0x0a...) and turn
    // them into 'N' by xor-ing 0x0a ^ 0x4e into exactly those bytes.
    static std::uint64_t without_newlines(std::uint64_t w) noexcept {
        constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
        std::uint64_t v = w ^ 0x0a0a0a0a0a0a0a0aULL;
        std::uint64_t zero = ~(((v & kLow7) + kLow7) | v | kLow7);  // 0x80 in each zero byte
        return w ^ ((zero >> 7) * (0x0a ^ 0x4e));
    }

    std::uint64_t key_;
    std::uint64_t offset_ = 0;
    bool avoid_newline_;
};

}  // namespace tcpecho
