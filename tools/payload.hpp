// Reproducible pseudo-random byte streams: a sender generates them, a verifier regenerates the
// same stream and compares, so memory stays O(1) whatever the volume. Shared by the probe and
// the tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tcpecho {

// splitmix64 (Steele, Lea, Flood 2014): 8 bytes per step, passes BigCrush, trivially seekable.
class PayloadStream {
public:
    // avoid_newline: map '\n' to another byte, for line mode payloads.
    explicit PayloadStream(std::uint64_t seed, bool avoid_newline = false) noexcept
        : state_(seed), avoid_newline_(avoid_newline) {}

    void fill(std::byte* out, std::size_t n) noexcept {
        while (n > 0) {
            if (left_ == 0) refill();
            std::size_t take = n < left_ ? n : left_;
            std::memcpy(out, block_ + (8 - left_), take);
            out += take;
            n -= take;
            left_ -= take;
            offset_ += take;
        }
    }

    // Compares `got` with the next bytes of the stream (advancing it). Returns the index of the
    // first mismatch in `got`, or n when all match.
    std::size_t verify(const std::byte* got, std::size_t n) noexcept {
        std::byte expect[4096];
        std::size_t done = 0;
        while (done < n) {
            std::size_t chunk = n - done < sizeof expect ? n - done : sizeof expect;
            fill(expect, chunk);
            if (std::memcmp(expect, got + done, chunk) != 0) {
                for (std::size_t i = 0; i < chunk; ++i) {
                    if (expect[i] != got[done + i]) return done + i;
                }
            }
            done += chunk;
        }
        return n;
    }

    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

private:
    void refill() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        std::memcpy(block_, &z, 8);
        if (avoid_newline_) {
            for (auto& b : block_) {
                if (b == std::byte{'\n'}) b = std::byte{'N'};
            }
        }
        left_ = 8;
    }

    std::uint64_t state_;
    std::uint64_t offset_ = 0;
    std::byte block_[8] = {};
    std::size_t left_ = 0;
    bool avoid_newline_;
};

}  // namespace tcpecho
