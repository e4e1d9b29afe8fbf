// Shared by the fuzz targets: the libFuzzer entry point, a check that reports and aborts (a
// crash libFuzzer saves as an artifact, and a failing test under the corpus replay), and the
// small deterministic helpers the targets use to turn input bytes into parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace tcpecho::fuzz {

[[noreturn]] inline void check_failed(const char* file, int line, const char* what) {
    std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
    std::fflush(stderr);
    std::abort();
}

// Input bytes as parameters: reads past the end give 0, so every input is usable.
class ByteReader {
public:
    ByteReader(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
    std::uint8_t u8() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() noexcept {
        std::uint16_t lo = u8();
        return static_cast<std::uint16_t>(lo | (std::uint16_t{u8()} << 8));
    }
    [[nodiscard]] const std::uint8_t* rest() const noexcept { return data_ + pos_; }
    [[nodiscard]] std::size_t rest_size() const noexcept { return size_ - pos_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// splitmix64: chunk sizes and partial sends, reproducible from a seed taken from the input.
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform enough in [0, bound) for bound > 0.
    std::size_t below(std::size_t bound) noexcept { return static_cast<std::size_t>(next() % bound); }

private:
    std::uint64_t state_;
};

}  // namespace tcpecho::fuzz

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) ::tcpecho::fuzz::check_failed(__FILE__, __LINE__, #cond);            \
    } while (false)
