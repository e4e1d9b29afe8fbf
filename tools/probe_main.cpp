// tcpecho-probe (first cut): ping-pong echo verification against tcpechod or any echo server.
// Each connection sends `count` messages of `size` bytes framed for `--mode`, reads each echo
// back whole and compares every byte with the regenerated pseudo-random stream.
// The load, latency-histogram and recv() diagnostics of the full probe come with its own issue.
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "build_config.hpp"
#include "fd.hpp"
#include "framer.hpp"
#include "tools/payload.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tcpecho::FramingMode;

// Exit statuses (binding): 0 verified, 1 verification failed, 2 usage, 3 connect/reset/timeout.
constexpr int kExitOk = 0;
constexpr int kExitMismatch = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNetwork = 3;

struct Options {
    std::string host = "127.0.0.1";
    std::string port = "7";
    FramingMode mode = FramingMode::Raw;
    std::size_t size = 1024;
    std::size_t frame_size = 0;  // fixed mode; defaults to size
    std::uint64_t count = 1000;
    unsigned connections = 1;
    std::uint64_t seed = 1;
    int timeout_ms = 5000;
    bool quiet = false;
};

struct Outcome {
    int status = kExitOk;
    std::string error;
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    double min_us = 1e300;
    double max_us = 0;
    double sum_us = 0;
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "Usage: tcpecho-probe [OPTIONS] HOST[:PORT]\n"
                 "\n"
                 "Sends pseudo-random messages to an echo server, reads every echo back whole and\n"
                 "verifies each byte (ping-pong: one message in flight per connection).\n"
                 "\n"
                 "Options:\n"
                 "  -m, --mode MODE       raw | fixed | length | line (framing the server expects; default raw)\n"
                 "      --frame-size N    fixed mode: bytes per frame (default: --size)\n"
                 "  -s, --size N          payload bytes per message (default 1024)\n"
                 "  -n, --count N         messages per connection (default 1000)\n"
                 "  -c, --connections N   parallel connections (default 1)\n"
                 "      --seed S          payload seed (default 1); printed so a failure can be repeated\n"
                 "      --timeout SEC     connect and per-echo timeout (default 5)\n"
                 "  -q, --quiet           print nothing but errors\n"
                 "  -h, --help            show this help and exit\n"
                 "  -V, --version         show the version and exit\n"
                 "\n"
                 "HOST is an IPv4 or IPv6 address or a host name; IPv6 with a port: [::1]:7007.\n"
                 "Exit status: 0 verified, 1 verification failed, 2 usage error,\n"
                 "3 could not connect, connection reset, or timeout.\n");
}

bool parse_target(const std::string& arg, Options& o) {
    if (!arg.empty() && arg.front() == '[') {
        auto close = arg.find(']');
        if (close == std::string::npos) return false;
        o.host = arg.substr(1, close - 1);
        if (close + 1 < arg.size()) {
            if (arg[close + 1] != ':') return false;
            o.port = arg.substr(close + 2);
        }
        return true;
    }
    auto colon = arg.find(':');
    if (colon != std::string::npos && arg.find(':', colon + 1) == std::string::npos) {
        o.host = arg.substr(0, colon);
        o.port = arg.substr(colon + 1);
    } else {
        o.host = arg;  // bare IPv6 address or host
    }
    return !o.host.empty() && !o.port.empty();
}

bool parse_number(const char* text, std::uint64_t& out) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') return false;
    out = v;
    return true;
}

tcpecho::UniqueFd connect_to(const Options& o, std::string& error) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res);
    if (rc != 0) {
        error = "cannot resolve " + o.host + ": " + ::gai_strerror(rc);
        return {};
    }
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        tcpecho::UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) continue;
        timeval tv{o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::freeaddrinfo(res);
            return fd;
        }
        error = "cannot connect to " + o.host + " port " + o.port + ": " + std::strerror(errno);
    }
    ::freeaddrinfo(res);
    if (error.empty()) error = "cannot connect to " + o.host + " port " + o.port;
    return {};
}

std::string hex_around(const std::vector<std::byte>& data, std::size_t at) {
    std::string out;
    std::size_t from = at >= 4 ? at - 4 : 0;
    std::size_t to = std::min(data.size(), at + 5);
    char b[8];
    for (std::size_t i = from; i < to; ++i) {
        std::snprintf(b, sizeof b, i == at ? "[%02x]" : "%02x ", std::to_integer<unsigned>(data[i]));
        out += b;
    }
    return out;
}

// One connection's ping-pong run.
Outcome run_connection(const Options& o, unsigned index) {
    Outcome out;
    tcpecho::UniqueFd fd = connect_to(o, out.error);
    if (!fd) {
        out.status = kExitNetwork;
        return out;
    }
    const bool line = o.mode == FramingMode::Line;
    tcpecho::PayloadStream tx(o.seed * 1000003 + index, line);
    std::size_t payload = o.mode == FramingMode::Fixed ? (o.frame_size != 0 ? o.frame_size : o.size) : o.size;
    std::size_t header = o.mode == FramingMode::Length ? tcpecho::kLengthHeaderSize : 0;
    std::size_t frame = header + payload + (line ? 1 : 0);
    std::vector<std::byte> msg(frame);
    std::vector<std::byte> echo(frame);
    for (std::uint64_t m = 0; m < o.count; ++m) {
        if (header != 0) tcpecho::write_length_header(msg.data(), static_cast<std::uint32_t>(payload));
        tx.fill(msg.data() + header, payload);
        if (line) msg[frame - 1] = std::byte{'\n'};
        auto start = Clock::now();
        for (std::size_t off = 0; off < frame;) {
            tcpecho::IoResult r = tcpecho::send_some(fd.get(), msg.data() + off, frame - off);
            if (r.status != tcpecho::IoStatus::Ok) {
                out.status = kExitNetwork;
                out.error = "connection " + std::to_string(index) + ": send failed at message " + std::to_string(m) +
                            (r.status == tcpecho::IoStatus::WouldBlock ? ": timeout" : ": " + tcpecho::errno_text(r.error));
                return out;
            }
            off += r.bytes;
        }
        for (std::size_t got = 0; got < frame;) {
            pollfd p{fd.get(), POLLIN, 0};
            if (::poll(&p, 1, o.timeout_ms) <= 0) {
                out.status = kExitNetwork;
                out.error = "connection " + std::to_string(index) + ": timeout waiting for the echo of message " +
                            std::to_string(m) + " (" + std::to_string(got) + " of " + std::to_string(frame) +
                            " bytes back)";
                return out;
            }
            tcpecho::IoResult r = tcpecho::recv_some(fd.get(), echo.data() + got, frame - got);
            if (r.status == tcpecho::IoStatus::Eof) {
                out.status = kExitMismatch;
                out.error = "connection " + std::to_string(index) + ": early EOF in the echo of message " +
                            std::to_string(m) + " at stream offset " + std::to_string(m * frame + got);
                return out;
            }
            if (r.status != tcpecho::IoStatus::Ok) {
                out.status = kExitNetwork;
                out.error = "connection " + std::to_string(index) + ": recv failed: " + tcpecho::errno_text(r.error);
                return out;
            }
            got += r.bytes;
        }
        double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        auto diff = std::mismatch(msg.begin(), msg.end(), echo.begin());
        if (diff.first != msg.end()) {
            std::size_t at = static_cast<std::size_t>(diff.first - msg.begin());
            out.status = kExitMismatch;
            out.error = "connection " + std::to_string(index) + ": mismatch in message " + std::to_string(m) +
                        " at stream offset " + std::to_string(m * frame + at) + ": expected " + hex_around(msg, at) +
                        " received " + hex_around(echo, at);
            return out;
        }
        out.messages++;
        out.bytes += frame;
        out.min_us = std::min(out.min_us, us);
        out.max_us = std::max(out.max_us, us);
        out.sum_us += us;
    }
    // End of run: half-close and expect the server to close after echoing everything.
    ::shutdown(fd.get(), SHUT_WR);
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, o.timeout_ms) > 0) {
        std::byte extra[1];
        tcpecho::IoResult r = tcpecho::recv_some(fd.get(), extra, sizeof extra);
        if (r.status == tcpecho::IoStatus::Ok) {
            out.status = kExitMismatch;
            out.error = "connection " + std::to_string(index) + ": extra bytes after the last echo";
        }
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    static const option long_options[] = {
        {"mode", required_argument, nullptr, 'm'},      {"frame-size", required_argument, nullptr, 'F'},
        {"size", required_argument, nullptr, 's'},      {"count", required_argument, nullptr, 'n'},
        {"connections", required_argument, nullptr, 'c'}, {"seed", required_argument, nullptr, 'S'},
        {"timeout", required_argument, nullptr, 'W'},   {"quiet", no_argument, nullptr, 'q'},
        {"help", no_argument, nullptr, 'h'},            {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    for (;;) {
        int opt = ::getopt_long(argc, argv, "m:s:n:c:qhV", long_options, nullptr);
        if (opt == -1) break;
        std::uint64_t v = 0;
        auto number = [&](const char* what, std::uint64_t min, std::uint64_t max) {
            if (!parse_number(optarg, v) || v < min || v > max) {
                std::fprintf(stderr, "tcpecho-probe: %s must be a number in %llu..%llu, not '%s'\n", what,
                             static_cast<unsigned long long>(min), static_cast<unsigned long long>(max), optarg);
                std::exit(kExitUsage);
            }
            return v;
        };
        switch (opt) {
        case 'm': {
            auto mode = tcpecho::parse_framing_mode(optarg);
            if (!mode) {
                std::fprintf(stderr, "tcpecho-probe: --mode must be raw, fixed, length or line, not '%s'\n", optarg);
                return kExitUsage;
            }
            o.mode = *mode;
            break;
        }
        case 'F':
            o.frame_size = number("--frame-size", 1, 64ULL << 20);
            break;
        case 's':
            o.size = number("--size", 1, 64ULL << 20);
            break;
        case 'n':
            o.count = number("--count", 1, 1ULL << 40);
            break;
        case 'c':
            o.connections = static_cast<unsigned>(number("--connections", 1, 10000));
            break;
        case 'S':
            o.seed = number("--seed", 0, ~0ULL);
            break;
        case 'W':
            o.timeout_ms = static_cast<int>(number("--timeout", 1, 3600) * 1000);
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            return kExitOk;
        case 'V':
            std::printf("tcpecho-probe %s\n", TCPECHO_VERSION);
            return kExitOk;
        default:
            std::fprintf(stderr, "Try 'tcpecho-probe --help'.\n");
            return kExitUsage;
        }
    }
    if (optind + 1 != argc || !parse_target(argv[optind], o)) {
        std::fprintf(stderr, "tcpecho-probe: expected one HOST[:PORT] argument\nTry 'tcpecho-probe --help'.\n");
        return kExitUsage;
    }

    if (!o.quiet) {
        std::printf("PROBE %s port %s: mode %s, %u connection(s) x %llu messages of %zu bytes, seed %llu\n",
                    o.host.c_str(), o.port.c_str(), std::string(tcpecho::to_string(o.mode)).c_str(), o.connections,
                    static_cast<unsigned long long>(o.count), o.size, static_cast<unsigned long long>(o.seed));
    }
    std::vector<Outcome> outcomes(o.connections);
    auto start = Clock::now();
    {
        std::vector<std::thread> threads;
        for (unsigned i = 0; i < o.connections; ++i) {
            threads.emplace_back([&, i] { outcomes[i] = run_connection(o, i); });
        }
        for (auto& t : threads) t.join();
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();

    Outcome total;
    int status = kExitOk;
    for (const Outcome& r : outcomes) {
        total.messages += r.messages;
        total.bytes += r.bytes;
        total.sum_us += r.sum_us;
        total.min_us = std::min(total.min_us, r.min_us);
        total.max_us = std::max(total.max_us, r.max_us);
        if (r.status != kExitOk) {
            std::fprintf(stderr, "tcpecho-probe: FAILED: %s (seed %llu)\n", r.error.c_str(),
                         static_cast<unsigned long long>(o.seed));
            // A verification failure outranks a network failure in the exit status.
            if (status != kExitMismatch) status = r.status;
        }
    }
    if (!o.quiet) {
        std::printf("%llu messages, %llu bytes verified in %.3f s: %.1f msgs/s, %.2f MB/s\n",
                    static_cast<unsigned long long>(total.messages), static_cast<unsigned long long>(total.bytes), secs,
                    static_cast<double>(total.messages) / secs, static_cast<double>(total.bytes) / secs / 1e6);
        if (total.messages > 0) {
            std::printf("round trip min/avg/max = %.1f/%.1f/%.1f us\n", total.min_us,
                        total.sum_us / static_cast<double>(total.messages), total.max_us);
        }
        std::printf("%s\n", status == kExitOk ? "RESULT: OK, every byte verified" : "RESULT: FAILED");
    }
    return status;
}
