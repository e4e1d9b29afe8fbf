#include "tools/probe_options.hpp"

#include <getopt.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "build_config.hpp"
#include "lib/units.hpp"

namespace tcpecho::probe {

namespace {

constexpr std::uint64_t kMaxMessage = 64ULL << 20;

const char kHelp[] =
    "Usage: tcpecho-probe [OPTIONS] HOST[:PORT]\n"
    "\n"
    "Drives an echo server (tcpechod or any other) with reproducible pseudo-random messages,\n"
    "verifies every echoed byte, and reports throughput, latency percentiles and how recv()\n"
    "woke up. PORT defaults to 7; IPv6 with a port: [::1]:7007. Sizes take K/M/G suffixes\n"
    "(binary), durations us/ms/s/m/h (plain numbers are seconds).\n"
    "\n"
    "What to send:\n"
    "  -m, --mode MODE         raw | fixed | length | line: the server's framing (default raw)\n"
    "      --frame-size N      fixed mode: bytes per frame; each message is one frame\n"
    "  -s, --size N|MIN-MAX    payload bytes per message, or a range drawn per message\n"
    "                          (default 1024; the frame's header or '\\n' is extra)\n"
    "  -n, --count N           messages per connection (default 1000 unless --time is given)\n"
    "  -t, --time DURATION     send for this long instead of a count\n"
    "  -c, --connections N     parallel connections (default 1)\n"
    "  -T, --threads N         threads driving them (default: min(connections, CPUs))\n"
    "      --workload W        pingpong: one message in flight per connection (default);\n"
    "                          stream: full duplex with at most --window bytes in flight\n"
    "      --window N          stream workload: bytes sent but not yet echoed (default 1M)\n"
    "      --rate R            messages/s over all connections, open loop: latency counts\n"
    "                          from when each message was due, so stalls are not hidden\n"
    "      --split K           send each message in K pieces (a shorter one byte by byte) ...\n"
    "      --split-delay D     ... this long apart (default 1ms)\n"
    "      --seed S            payload seed (default: random); printed so a run can be repeated\n"
    "\n"
    "How to read the echo:\n"
    "      --recv HOW          loop: recv() until the message is complete (default)\n"
    "                          waitall: recv(MSG_WAITALL) for the rest of the message\n"
    "                          lowat=N: SO_RCVLOWAT=N, woken only when N bytes are queued\n"
    "                          once: one recv() per message, like a naive client; fails and\n"
    "                          explains when TCP delivers a message in pieces\n"
    "      --timeout D         connect timeout, and longest wait for an echo (default 5s)\n"
    "\n"
    "UDP (--udp):\n"
    "      --udp               send datagrams to a UDP echo server: -c flows, each its own\n"
    "                          connected socket; -s is each datagram's UDP payload (0..65535\n"
    "                          accepted; the kernel allows 65507 over IPv4, 65527 over IPv6);\n"
    "                          -n datagrams per flow, or -t; --rate paces all flows together;\n"
    "                          --workload pingpong: 1 datagram in flight per flow (default),\n"
    "                          stream: up to --window bytes; a datagram whose echo is not back\n"
    "                          within --timeout is lost (at the end, the probe waits that long)\n"
    "      --max-loss PCT      loss tolerated before exit 1, e.g. 0.5 or 0.5% (default 0)\n"
    "                          A datagram of 24 bytes or more starts with a header (magic, flow\n"
    "                          id, sequence number, send time), then a payload derived from\n"
    "                          (seed, flow, sequence number). One too short for a header is all\n"
    "                          payload, is alone in flight on its flow, and its echo is matched\n"
    "                          to it (0 bytes: verified by the empty echo). Reported: sent,\n"
    "                          received, lost, duplicated, reordered, corrupted, late (echoed\n"
    "                          after it was counted lost), latency from each send time.\n"
    "                          --mode (but raw), --frame-size, --recv, --split, --split-delay\n"
    "                          are TCP only.\n"
    "\n"
    "Output:\n"
    "  -J, --json              one JSON document on stdout (also when the run fails)\n"
    "      --progress          a line per second while running (default: on stdout when it is\n"
    "                          a terminal, else on stderr when that is one; with -J on stderr)\n"
    "      --no-progress\n"
    "      --hdr-out FILE      write the latency distribution to FILE in HdrHistogram's\n"
    "                          percentile-distribution format (milliseconds; one count per\n"
    "                          verified message or datagram), for HdrHistogram's plotter\n"
    "  -q, --quiet             print nothing but errors\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "Ctrl-C stops sending and reports once what is in flight is back; a second Ctrl-C reports\n"
    "at once (with --recv waitall/once: when the blocked call returns, within --timeout),\n"
    "counting what did not come back as a timeout (with --udp: as lost).\n"
    "\n"
    "Exit status: 0 every byte verified; 1 verification failed (mismatched, missing or extra\n"
    "bytes); 2 usage error; 3 could not connect, connection reset, or timeout. When\n"
    "connections fail in different ways, 1 wins: one connection with wrong bytes makes the\n"
    "status 1 even if others were reset or timed out; 3 means no byte was wrong.\n"
    "With --udp: 0 every datagram verified and loss within --max-loss; 1 a corrupted datagram,\n"
    "or too much loss; 2 usage error, or the kernel refused the datagram size (EMSGSIZE);\n"
    "3 a network error, e.g. nothing listening (connection refused). In that order of\n"
    "precedence: 2 (EMSGSIZE), then 1 (corruption), then 3, then 1 (loss).\n";

enum LongOnly : int {
    kFrameSize = 256,
    kWorkload,
    kWindow,
    kRate,
    kSplit,
    kSplitDelay,
    kSeed,
    kRecv,
    kTimeout,
    kProgress,
    kNoProgress,
    kUdp,
    kMaxLoss,
    kHdrOut,
};

const option kLongOptions[] = {
    {"mode", required_argument, nullptr, 'm'},
    {"frame-size", required_argument, nullptr, kFrameSize},
    {"size", required_argument, nullptr, 's'},
    {"count", required_argument, nullptr, 'n'},
    {"time", required_argument, nullptr, 't'},
    {"connections", required_argument, nullptr, 'c'},
    {"threads", required_argument, nullptr, 'T'},
    {"workload", required_argument, nullptr, kWorkload},
    {"window", required_argument, nullptr, kWindow},
    {"rate", required_argument, nullptr, kRate},
    {"split", required_argument, nullptr, kSplit},
    {"split-delay", required_argument, nullptr, kSplitDelay},
    {"seed", required_argument, nullptr, kSeed},
    {"recv", required_argument, nullptr, kRecv},
    {"timeout", required_argument, nullptr, kTimeout},
    {"json", no_argument, nullptr, 'J'},
    {"progress", no_argument, nullptr, kProgress},
    {"no-progress", no_argument, nullptr, kNoProgress},
    {"hdr-out", required_argument, nullptr, kHdrOut},
    {"udp", no_argument, nullptr, kUdp},
    {"max-loss", required_argument, nullptr, kMaxLoss},
    {"quiet", no_argument, nullptr, 'q'},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, 'V'},
    {nullptr, 0, nullptr, 0},
};

struct Failure {
    std::string message;
};

std::uint64_t number(std::string_view text, std::string_view what, std::uint64_t min, std::uint64_t max) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max) {
        throw Failure{std::string(what) + " must be a number in " + std::to_string(min) + ".." + std::to_string(max) +
                      ", not '" + std::string(text) + "'"};
    }
    return v;
}

std::uint64_t size(std::string_view text, std::string_view what, std::uint64_t min, std::uint64_t max) {
    auto v = parse_size(text);
    if (!v || *v < min || *v > max) {
        throw Failure{std::string(what) + " must be a size in " + std::to_string(min) + ".." + std::to_string(max) +
                      " bytes (K/M/G suffixes allowed), not '" + std::string(text) + "'"};
    }
    return *v;
}

std::uint64_t duration(std::string_view text, std::string_view what, std::uint64_t min_us) {
    auto v = parse_duration_us(text);
    constexpr std::uint64_t kMaxUs = 7ULL * 24 * 3600 * 1'000'000;
    if (!v || *v < min_us || *v > kMaxUs) {
        throw Failure{std::string(what) + " must be a duration such as 500ms, 10s or 2m (at least " +
                      std::to_string(min_us) + "us, at most 7 days), not '" + std::string(text) + "'"};
    }
    return *v;
}

void parse_target(const std::string& arg, Options& o) {
    auto fail = [&] {
        throw Failure{"cannot parse target '" + arg + "': expected HOST, HOST:PORT, IPv6 or [IPv6]:PORT"};
    };
    if (!arg.empty() && arg.front() == '[') {
        auto close = arg.find(']');
        if (close == std::string::npos || close == 1) fail();
        o.host = arg.substr(1, close - 1);
        if (close + 1 < arg.size()) {
            if (arg[close + 1] != ':' || close + 2 == arg.size()) fail();
            o.port = arg.substr(close + 2);
        }
        return;
    }
    auto colon = arg.find(':');
    if (colon != std::string::npos && arg.find(':', colon + 1) == std::string::npos) {
        o.host = arg.substr(0, colon);
        o.port = arg.substr(colon + 1);
        if (o.port.empty()) fail();
    } else {
        o.host = arg;  // a host name, IPv4, or a bare IPv6 address (the port stays 7)
    }
    if (o.host.empty()) fail();
    // A numeric port must fit in 16 bits (getaddrinfo would silently wrap it); service names
    // ("echo") are left to the resolver.
    if (std::all_of(o.port.begin(), o.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        unsigned long port = o.port.size() <= 5 ? std::stoul(o.port) : 100000;
        if (port == 0 || port > 65535) throw Failure{"port must be 1..65535, not '" + o.port + "'"};
    }
}

// "0.5", "0.5%", "100": a percentage of the datagrams sent.
double percent(std::string_view text, std::string_view what) {
    std::string copy(text);
    if (!copy.empty() && copy.back() == '%') copy.pop_back();
    char* end = nullptr;
    const double v = copy.empty() || copy.front() == ' ' ? -1 : std::strtod(copy.c_str(), &end);
    if (end == nullptr || end == copy.c_str() || *end != '\0' || !(v >= 0) || v > 100) {
        throw Failure{std::string(what) + " must be a percentage in 0..100 such as 0.5 or 0.5%, not '" +
                      std::string(text) + "'"};
    }
    return v;
}

void parse_recv(std::string_view text, Options& o) {
    if (text == "loop") o.recv = RecvMode::Loop;
    else if (text == "once") o.recv = RecvMode::Once;
    else if (text == "waitall") o.recv = RecvMode::WaitAll;
    else if (text.starts_with("lowat=")) {
        o.recv = RecvMode::LowAt;
        o.lowat = static_cast<std::uint32_t>(size(text.substr(6), "--recv lowat=N", 1, 1ULL << 30));
    } else {
        throw Failure{"--recv must be loop, once, waitall or lowat=N, not '" + std::string(text) + "'"};
    }
}

void parse_udp_size(const std::optional<std::string>& size_text, Options& o);
void parse_tcp_size(const std::optional<std::string>& size_text, const std::optional<std::uint64_t>& frame_size,
                    Options& o);

Options parse(int argc, char** argv, std::optional<ShowText>& show) {
    Options o;
    std::optional<std::string> size_text;
    std::optional<std::uint64_t> frame_size;
    bool window_given = false;
    bool max_loss_given = false;
    // The first option given that only means something for a TCP stream: refused with --udp.
    std::optional<std::string> tcp_only;
    auto tcp_option = [&](std::string name) {
        if (!tcp_only) tcp_only = std::move(name);
    };
    optind = 0;  // 0, not 1: glibc then also resets its state inside a grouped option
    opterr = 0;
    for (;;) {
        int opt = ::getopt_long(argc, argv, ":m:s:n:t:c:T:JqhV", kLongOptions, nullptr);
        if (opt == -1) break;
        std::string_view arg = optarg != nullptr ? optarg : "";
        switch (opt) {
        case 'm': {
            auto mode = parse_framing_mode(arg);
            if (!mode) throw Failure{"--mode must be raw, fixed, length or line, not '" + std::string(arg) + "'"};
            o.shape.mode = *mode;
            if (*mode != FramingMode::Raw) tcp_option("--mode " + std::string(arg));
            break;
        }
        case kFrameSize:
            frame_size = size(arg, "--frame-size", 1, kMaxMessage);
            tcp_option("--frame-size");
            break;
        case 's':
            size_text = std::string(arg);
            break;
        case 'n':
            o.count = number(arg, "--count", 1, 1ULL << 48);
            break;
        case 't':
            o.time_us = duration(arg, "--time", 1000);
            break;
        case 'c':
            o.connections = static_cast<unsigned>(number(arg, "--connections", 1, 100000));
            break;
        case 'T':
            o.threads = static_cast<unsigned>(number(arg, "--threads", 1, 1024));
            break;
        case kWorkload:
            if (arg == "pingpong") o.workload = Workload::PingPong;
            else if (arg == "stream") o.workload = Workload::Stream;
            else throw Failure{"--workload must be pingpong or stream, not '" + std::string(arg) + "'"};
            break;
        case kWindow:
            window_given = true;
            o.window = size(arg, "--window", 1, 1ULL << 30);
            break;
        case kRate: {
            char* end = nullptr;
            std::string copy(arg);
            double r = std::strtod(copy.c_str(), &end);
            if (end == copy.c_str() || *end != '\0' || !(r >= 0.001) || r > 1e9) {
                throw Failure{"--rate must be 0.001..1e9 messages per second, not '" + copy + "'"};
            }
            o.rate = r;
            break;
        }
        case kSplit:
            o.split = static_cast<unsigned>(number(arg, "--split", 1, 65536));
            tcp_option("--split");
            break;
        case kSplitDelay:
            o.split_delay_us = duration(arg, "--split-delay", 0);
            tcp_option("--split-delay");
            break;
        case kSeed:
            o.seed = number(arg, "--seed", 0, UINT64_MAX);
            o.seed_given = true;
            break;
        case kRecv:
            parse_recv(arg, o);
            tcp_option("--recv " + std::string(arg));
            break;
        case kTimeout:
            o.timeout_us = duration(arg, "--timeout", 1000);
            break;
        case 'J':
            o.json = true;
            break;
        case kProgress:
            o.progress = true;
            break;
        case kNoProgress:
            o.progress = false;
            break;
        case kHdrOut:
            if (*optarg == '\0') throw Failure{"--hdr-out needs a file name"};
            o.hdr_out = optarg;
            break;
        case kUdp:
            o.udp = true;
            break;
        case kMaxLoss:
            o.max_loss_percent = percent(arg, "--max-loss");
            max_loss_given = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            show = ShowText{kHelp};
            return o;
        case 'V':
            show = ShowText{std::string("tcpecho-probe ") + TCPECHO_VERSION + "\n"};
            return o;
        case ':':
            throw Failure{"option '" + std::string(argv[optind - 1]) + "' needs a value"};
        default:
            throw Failure{"unknown option '" + std::string(argv[optind - 1]) + "'"};
        }
    }
    if (optind + 1 != argc) throw Failure{"expected exactly one HOST[:PORT] argument"};
    parse_target(argv[optind], o);

    if (o.count && o.time_us) throw Failure{"give --count or --time, not both"};
    if (!o.count && !o.time_us) o.count = 1000;

    if (o.udp && tcp_only) {
        throw Failure{*tcp_only + " applies to TCP only: it cannot be combined with --udp"};
    }
    if (max_loss_given && !o.udp) throw Failure{"--max-loss applies to --udp only"};
    if (o.udp) {
        parse_udp_size(size_text, o);
    } else {
        parse_tcp_size(size_text, frame_size, o);
    }
    if (o.workload == Workload::PingPong && window_given) {
        throw Failure{"--window applies to --workload stream only"};
    }
    if (o.threads == 0) {
        unsigned cpus = std::max(1U, std::thread::hardware_concurrency());
        o.threads = std::min(o.connections, cpus);
    }
    if (o.threads > o.connections) o.threads = o.connections;
    return o;
}

// UDP: -s is the UDP payload of each datagram, exactly what the server receives. Anything the
// length field can say is accepted here; the kernel decides what it really sends (EMSGSIZE).
void parse_udp_size(const std::optional<std::string>& size_text, Options& o) {
    constexpr std::uint64_t kMax = 65535;
    if (!size_text) return;
    auto dash = size_text->find('-');
    if (dash == std::string::npos) {
        o.shape.size_min = o.shape.size_max = size(*size_text, "--size", 0, kMax);
    } else {
        o.shape.size_min = size(size_text->substr(0, dash), "--size MIN", 0, kMax);
        o.shape.size_max = size(size_text->substr(dash + 1), "--size MAX", 0, kMax);
        if (o.shape.size_min > o.shape.size_max) throw Failure{"--size MIN-MAX needs MIN <= MAX"};
    }
}

void parse_tcp_size(const std::optional<std::string>& size_text, const std::optional<std::uint64_t>& frame_size,
                    Options& o) {
    // Message size: payload bytes, or the frame in fixed mode.
    const bool fixed = o.shape.mode == FramingMode::Fixed;
    const std::uint64_t min_payload = o.shape.mode == FramingMode::Length || o.shape.mode == FramingMode::Line ? 0 : 1;
    if (frame_size && !fixed) throw Failure{"--frame-size applies to --mode fixed only"};
    if (size_text) {
        auto dash = size_text->find('-');
        if (dash == std::string::npos) {
            o.shape.size_min = o.shape.size_max = size(*size_text, "--size", min_payload, kMaxMessage);
        } else {
            o.shape.size_min = size(size_text->substr(0, dash), "--size MIN", min_payload, kMaxMessage);
            o.shape.size_max = size(size_text->substr(dash + 1), "--size MAX", min_payload, kMaxMessage);
            if (o.shape.size_min > o.shape.size_max) throw Failure{"--size MIN-MAX needs MIN <= MAX"};
        }
    }
    if (fixed) {
        if (size_text && o.shape.size_min != o.shape.size_max) {
            throw Failure{"fixed mode sends whole frames: give --frame-size, not a --size range"};
        }
        if (size_text && frame_size && *frame_size != o.shape.size_min) {
            throw Failure{"fixed mode: --size and --frame-size disagree (a message is one frame)"};
        }
        std::uint64_t frame = frame_size ? *frame_size : o.shape.size_min;
        o.shape.size_min = o.shape.size_max = frame;
    }
    if (o.shape.mode == FramingMode::Length && o.shape.size_max > 0xffffffffULL) {
        throw Failure{"length mode payloads are at most 4 GiB - 1"};
    }
}

}  // namespace

std::variant<Options, ShowText, UsageError> parse_options(int argc, char** argv) {
    try {
        std::optional<ShowText> show;
        Options o = parse(argc, argv, show);
        if (show) return *show;
        return o;
    } catch (const Failure& f) {
        return UsageError{f.message};
    }
}

std::string_view to_string(Workload workload) noexcept {
    return workload == Workload::PingPong ? "pingpong" : "stream";
}

std::string to_string(RecvMode mode, std::uint32_t lowat) {
    switch (mode) {
    case RecvMode::Loop:
        return "loop";
    case RecvMode::Once:
        return "once";
    case RecvMode::WaitAll:
        return "waitall";
    case RecvMode::LowAt:
        return "lowat=" + std::to_string(lowat);
    }
    return "?";
}

}  // namespace tcpecho::probe
