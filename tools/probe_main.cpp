// tcpecho-probe: drives an echo server with reproducible messages, verifies every byte,
// reports throughput, latency and how recv() woke up; with --udp, datagrams, loss and order.
// Wiring only: options, run (TCP or UDP engine), report.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>  // ENOMEM
#include <cstdio>
#include <random>

#include "lib/fd.hpp"
#include "tools/engine.hpp"
#include "tools/hdr_output.hpp"
#include "tools/probe_options.hpp"
#include "tools/report.hpp"
#include "tools/udp_engine.hpp"
#include "tools/udp_report.hpp"

namespace {

using namespace tcpecho::probe;

// First Ctrl-C: stop sending, wait for what is in flight, report. Second: report now,
// counting what did not come back. Third: the default action, for a probe that is stuck.
void on_sigint(int /*signal*/) {
    if (g_interrupts.fetch_add(1) + 1 >= 2) ::signal(SIGINT, SIG_DFL);
}

std::uint64_t random_seed() {
    std::random_device device;
    return (std::uint64_t{device()} << 32) | device();
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = parse_options(argc, argv);
    if (auto* show = std::get_if<ShowText>(&parsed)) {
        std::fputs(show->text.c_str(), stdout);
        return kExitOk;
    }
    if (auto* error = std::get_if<UsageError>(&parsed)) {
        std::fprintf(stderr, "tcpecho-probe: %s\nTry 'tcpecho-probe --help'.\n", error->message.c_str());
        return kExitUsage;
    }
    Options options = std::get<Options>(parsed);
    if (!options.seed_given) options.seed = random_seed();
    const bool human = !options.json && !options.quiet;
    // Progress goes where someone is watching: stdout when it is a terminal; else stderr when
    // that is one (stdout piped or redirected, or -J): a UDP run against a lossy server waits
    // --timeout for every lost datagram and would otherwise say nothing for minutes.
    // --progress forces it (to stdout, with -J to stderr); --no-progress and -q turn it off.
    std::FILE* progress_out = nullptr;
    if (!options.quiet) {
        if (options.progress.has_value()) {
            if (*options.progress) progress_out = human ? stdout : stderr;
        } else if (human && ::isatty(STDOUT_FILENO) == 1) {
            progress_out = stdout;
        } else if (::isatty(STDERR_FILENO) == 1) {
            progress_out = stderr;
        }
    }

    // --hdr-out is opened before the run, so a path that cannot be written fails at once.
    std::FILE* hdr_out = nullptr;
    if (!options.hdr_out.empty()) {
        int error = 0;
        const int fd = tcpecho::open_for_writing(options.hdr_out, error);
        if (fd >= 0) hdr_out = ::fdopen(fd, "w");
        if (hdr_out == nullptr) {
            if (fd >= 0) ::close(fd);
            std::fprintf(stderr, "tcpecho-probe: --hdr-out %s: cannot write it: %s\n", options.hdr_out.c_str(),
                         tcpecho::errno_text(error != 0 ? error : ENOMEM).c_str());
            return kExitUsage;
        }
    }
    auto write_hdr = [&](const tcpecho::LogLinearHistogram& latency) {
        if (hdr_out == nullptr) return;
        const std::string text = hdr_percentile_distribution(latency);
        if (std::fputs(text.c_str(), hdr_out) < 0 || std::fclose(hdr_out) != 0) {
            std::fprintf(stderr, "tcpecho-probe: --hdr-out %s: write failed\n", options.hdr_out.c_str());
        }
        hdr_out = nullptr;
    };

    // One fd per connection: use what the hard limit allows, as load tools do.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }

    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    ::sigaction(SIGINT, &sa, nullptr);

    Progress before{0, 0, 0, 0, 0};
    std::function<void(const Progress&)> on_progress;
    if (progress_out != nullptr) {
        on_progress = [&](const Progress& now) {
            print_progress(progress_out, now, before);
            before = now;
        };
    }
    if (options.udp) {
        if (human) print_udp_header(stdout, options);
        UdpRunResult result = run_udp_probe(options, on_progress);
        write_hdr(result.latency_ns);
        print_udp_errors(stderr, options, result);
        if (options.json) {
            std::fputs(udp_json_report(options, result).c_str(), stdout);
        } else if (human) {
            print_udp_summary(stdout, options, result);
        }
        return result.exit_status();
    }
    if (human) print_header(stdout, options);
    RunResult result = run_probe(options, on_progress);
    write_hdr(result.totals.latency_ns);

    print_failures(stderr, options, result);
    if (options.json) {
        std::fputs(json_report(options, result).c_str(), stdout);
    } else if (human) {
        print_summary(stdout, options, result);
    }
    return result.exit_status();
}
