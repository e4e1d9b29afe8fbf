// tcpechod: argument parsing, configuration selection, exit statuses. No I/O logic here.
#include <getopt.h>
#include <malloc.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "build_config.hpp"
#include "daemon/base/log.hpp"
#include "daemon/service/config_loader.hpp"
#include "daemon/service/server.hpp"
#include "daemon/service/socket_activation.hpp"

namespace {

// sysexits(3)
constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 78;  // EX_CONFIG

void print_help(std::FILE* out) {
    std::fprintf(out,
                 "Usage: tcpechod [OPTIONS]\n"
                 "\n"
                 "Echo daemon for TCP byte streams (RFC 862), framed messages and UDP datagrams.\n"
                 "Each [[listen]] table of the configuration serves one address: TCP in one\n"
                 "mode, raw (echo bytes as received), fixed, length (4-byte big-endian length\n"
                 "prefix) or line, where framed modes echo only whole frames; or UDP, where\n"
                 "each datagram is echoed whole to its sender, within a per-source rate limit.\n"
                 "\n"
                 "Options:\n"
                 "  -c, --config FILE   read FILE (default: %s; without it and without\n"
                 "                      --config, an embedded default serves 127.0.0.1:7007\n"
                 "                      TCP raw and UDP, and 127.0.0.1:7008 TCP length)\n"
                 "  -t, --check-config  validate the configuration and exit (0 valid, 78 invalid)\n"
                 "      --dump-default-config\n"
                 "                      print the embedded default configuration and exit\n"
                 "  -h, --help          show this help and exit\n"
                 "  -V, --version       show the version and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT drain and exit (a second one closes at once),\n"
                 "SIGHUP reloads the configuration (new connections get the new modes and\n"
                 "limits, open ones keep theirs; an invalid file is reported and ignored),\n"
                 "SIGUSR1 logs all counters.\n"
                 "systemd: sd_notify readiness, status, reload and watchdog; sockets passed by\n"
                 "socket activation serve the [[listen]] table with the same name (the socket\n"
                 "unit's FileDescriptorName=) and proto, and then no other table is served.\n"
                 "Exit status: 0 success, 1 runtime failure (e.g. bind), 2 usage error,\n"
                 "78 configuration error (also: a passed socket no [[listen]] table serves).\n",
                 TCPECHOD_DEFAULT_CONFIG);
}

bool file_exists(const char* path) {
    struct stat st {};
    return ::stat(path, &st) == 0;
}

// --config FILE; else the default file if it exists; else the embedded default. Also what a
// reload (SIGHUP) reads again, so a default file created later is picked up then.
tcpecho::Config load_configuration(const char* config_path) {
    if (config_path != nullptr) return tcpecho::load_config_file(config_path);
    if (file_exists(TCPECHOD_DEFAULT_CONFIG)) return tcpecho::load_config_file(TCPECHOD_DEFAULT_CONFIG);
    return tcpecho::parse_config(tcpecho::embedded_default_config(), tcpecho::kEmbeddedConfigName);
}

}  // namespace

int main(int argc, char** argv) {
    tcpecho::log_init("tcpechod");
    // Connection buffers are 1 MiB and more, and max_buffer_memory bounds what they hold: a
    // freed one must go back to the kernel, not stay resident in malloc's heap. glibc raises
    // its mmap threshold to the size of every mmapped block freed (up to 32 MiB), after which
    // such buffers come from the heap and their pages stay after free() (measured: RSS 11.3
    // MiB at an 8 MiB budget once frame buffers had grown). A fixed threshold turns that off:
    // every buffer is its own mapping, and free() unmaps it. Buffers are pooled per worker,
    // so this costs an mmap/munmap only when the pool misses.
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    const char* config_path = nullptr;
    bool check_only = false;
    enum { kDumpDefault = 256 };
    static const option long_options[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check-config", no_argument, nullptr, 't'},
        {"dump-default-config", no_argument, nullptr, kDumpDefault},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    for (;;) {
        int opt = ::getopt_long(argc, argv, "c:thV", long_options, nullptr);
        if (opt == -1) break;
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case kDumpDefault:
            std::fwrite(tcpecho::embedded_default_config().data(), 1, tcpecho::embedded_default_config().size(),
                        stdout);
            return 0;
        case 'h':
            print_help(stdout);
            return 0;
        case 'V':
            std::printf("tcpechod %s\n", TCPECHO_VERSION);
            return 0;
        default:
            std::fprintf(stderr, "Try 'tcpechod --help'.\n");
            return kExitUsage;
        }
    }
    if (optind < argc) {
        std::fprintf(stderr, "tcpechod: unexpected argument '%s'\nTry 'tcpechod --help'.\n", argv[optind]);
        return kExitUsage;
    }

    tcpecho::Config config;
    try {
        config = load_configuration(config_path);
    } catch (const tcpecho::ConfigError& e) {
        LOG_ERR("configuration error: %s", e.what());
        return kExitConfig;
    }
    if (check_only) {
        std::printf("%s: configuration OK (%s)\n", config.source.c_str(),
                    tcpecho::count_text(config.listeners.size(), "listener", "listeners").c_str());
        return 0;
    }
    tcpecho::log_set_level(config.log_level);
    if (config_path == nullptr && config.source == tcpecho::kEmbeddedConfigName) {
        LOG_NOTICE("%s not found: using the embedded default configuration", TCPECHOD_DEFAULT_CONFIG);
    }

    try {
        tcpecho::prepare_process_signals();
        auto inherited = tcpecho::take_inherited_sockets();
        tcpecho::Server server(std::move(config), [config_path] { return load_configuration(config_path); },
                               std::move(inherited));
        return server.run();
    } catch (const tcpecho::ActivationError& e) {
        LOG_ERR("socket activation: %s", e.what());
        return kExitConfig;
    } catch (const std::exception& e) {
        LOG_ERR("cannot start: %s", e.what());
        return kExitFailure;
    }
}
