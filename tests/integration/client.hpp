// Small blocking and poll-based client helpers for the integration tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/fd.hpp"

namespace tcpecho::test {

using std::chrono::milliseconds;

// Connects (blocking) to host:port; TCP_NODELAY set so small writes leave at once.
UniqueFd connect_to(std::uint16_t port, const std::string& host = "127.0.0.1");

void send_all(int fd, const void* data, std::size_t n);
inline void send_all(int fd, const std::string& s) { send_all(fd, s.data(), s.size()); }
// Reads exactly n bytes; false on EOF, error or timeout.
bool recv_exact(int fd, void* buf, std::size_t n, milliseconds timeout);
std::string recv_string(int fd, std::size_t n, milliseconds timeout);
// Reads until EOF (or error); false on timeout. `out` gets everything read.
bool read_to_eof(int fd, std::string& out, milliseconds timeout);
// True if the socket becomes readable (data, EOF or error) within `timeout`.
bool readable_within(int fd, milliseconds timeout);
// True if the peer closed (EOF or reset) within `timeout`, discarding any data first.
bool closed_by_peer_within(int fd, milliseconds timeout);
// Sends RST instead of FIN on close (SO_LINGER 0).
void close_with_reset(UniqueFd& fd);

struct TransferResult {
    bool ok = false;
    std::string error;
    std::uint64_t sent = 0;
    std::uint64_t verified = 0;
};

// Full duplex: streams `total` pseudo-random bytes (seed) while reading the echo and verifying
// every byte; non-blocking with poll, so it cannot deadlock on full buffers. `on_progress` is
// called with bytes verified so far (may be empty).
TransferResult full_duplex(int fd, std::uint64_t total, std::uint64_t seed, milliseconds timeout,
                           const std::function<void(std::uint64_t)>& on_progress = {});

// A length-mode frame: 4-byte big-endian length + payload.
std::string length_frame(const std::string& payload);

}  // namespace tcpecho::test
