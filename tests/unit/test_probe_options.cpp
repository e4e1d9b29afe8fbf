// tcpecho-probe's command line: binding flags parse as documented; bad input is a usage error
// with a message that names the option.
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "test_catch.hpp"
#include "tools/probe_options.hpp"

using namespace tcpecho::probe;

namespace {

std::variant<Options, ShowText, UsageError> parse(std::initializer_list<const char*> args) {
    std::vector<std::string> storage{"tcpecho-probe"};
    for (const char* a : args) storage.emplace_back(a);
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    return parse_options(static_cast<int>(storage.size()), argv.data());
}

Options ok(std::initializer_list<const char*> args) {
    auto r = parse(args);
    if (auto* e = std::get_if<UsageError>(&r)) FAIL("usage error: " << e->message);
    REQUIRE(std::holds_alternative<Options>(r));
    return std::get<Options>(r);
}

std::string error(std::initializer_list<const char*> args) {
    auto r = parse(args);
    REQUIRE(std::holds_alternative<UsageError>(r));
    return std::get<UsageError>(r).message;
}

}  // namespace

TEST_CASE("probe options: targets", "[probe-options]") {
    Options o = ok({"127.0.0.1:7007"});
    CHECK(o.host == "127.0.0.1");
    CHECK(o.port == "7007");
    o = ok({"[::1]:7"});
    CHECK(o.host == "::1");
    CHECK(o.port == "7");
    o = ok({"::1"});
    CHECK(o.host == "::1");
    CHECK(o.port == "7");
    o = ok({"localhost"});
    CHECK(o.host == "localhost");
    CHECK(o.port == "7");
    CHECK(error({"[::1"}).find("target") != std::string::npos);
    CHECK(error({"host:"}).find("target") != std::string::npos);
    CHECK(error({}).find("HOST") != std::string::npos);
    CHECK(error({"a", "b"}).find("HOST") != std::string::npos);
}

TEST_CASE("probe options: defaults and every flag", "[probe-options]") {
    Options o = ok({"h"});
    CHECK(o.count == 1000U);
    CHECK(!o.time_us);
    CHECK(o.shape.size_min == 1024);
    CHECK(o.recv == RecvMode::Loop);
    CHECK(o.workload == Workload::PingPong);
    CHECK(!o.seed_given);

    o = ok({"-m", "length", "-s", "16-64K", "-t", "250ms", "-c", "8", "-T", "2", "--workload", "stream",
            "--window", "256K", "--rate", "1000.5", "--split", "3", "--split-delay", "100us", "--seed", "99",
            "--recv", "lowat=64K", "--timeout", "2s", "-J", "--no-progress", "-q", "h:1"});
    CHECK(o.shape.mode == tcpecho::FramingMode::Length);
    CHECK(o.shape.size_min == 16);
    CHECK(o.shape.size_max == 65536);
    CHECK(o.time_us == 250'000U);
    CHECK(!o.count);
    CHECK(o.connections == 8);
    CHECK(o.threads == 2);
    CHECK(o.workload == Workload::Stream);
    CHECK(o.window == 262144);
    CHECK(o.rate == 1000.5);
    CHECK(o.split == 3);
    CHECK(o.split_delay_us == 100);
    CHECK(o.seed == 99);
    CHECK(o.seed_given);
    CHECK(o.recv == RecvMode::LowAt);
    CHECK(o.lowat == 65536);
    CHECK(o.timeout_us == 2'000'000);
    CHECK(o.json);
    CHECK(o.progress == false);
    CHECK(o.quiet);

    o = ok({"--mode", "fixed", "--frame-size", "512K", "h"});
    CHECK(o.shape.size_min == 524288);
    CHECK(o.shape.size_max == 524288);
    o = ok({"-c", "3", "-T", "8", "h"});
    CHECK(o.threads == 3);  // never more threads than connections
    o = ok({"--recv", "waitall", "h"});
    CHECK(o.recv == RecvMode::WaitAll);
    o = ok({"--recv", "once", "h"});
    CHECK(o.recv == RecvMode::Once);
    o = ok({"-m", "line", "-s", "0", "h"});
    CHECK(o.shape.size_min == 0);
}

TEST_CASE("probe options: usage errors name the problem", "[probe-options]") {
    CHECK(error({"--mode", "bogus", "h"}).find("--mode") != std::string::npos);
    CHECK(error({"-s", "0", "h"}).find("--size") != std::string::npos);  // raw needs a byte
    CHECK(error({"-s", "9-3", "h"}).find("MIN <= MAX") != std::string::npos);
    CHECK(error({"-s", "65M", "h"}).find("--size") != std::string::npos);
    CHECK(error({"-n", "1", "-t", "1", "h"}).find("not both") != std::string::npos);
    CHECK(error({"--frame-size", "10", "h"}).find("fixed") != std::string::npos);
    CHECK(error({"-m", "fixed", "-s", "1-9", "h"}).find("fixed") != std::string::npos);
    CHECK(error({"--window", "1M", "h"}).find("stream") != std::string::npos);
    CHECK(error({"--recv", "sometimes", "h"}).find("--recv") != std::string::npos);
    CHECK(error({"--recv", "lowat=0", "h"}).find("lowat") != std::string::npos);
    CHECK(error({"--rate", "-5", "h"}).find("--rate") != std::string::npos);
    CHECK(error({"--timeout", "5 parsecs", "h"}).find("--timeout") != std::string::npos);
    CHECK(ok({"--split", "10", "-s", "1-5", "h"}).split == 10U);  // short messages: as many pieces as bytes
    CHECK(error({"--bogus", "h"}).find("unknown option") != std::string::npos);
    CHECK(error({"h", "-c"}).find("needs a value") != std::string::npos);
}

TEST_CASE("probe options: --help and --version", "[probe-options]") {
    auto r = parse({"--help"});
    REQUIRE(std::holds_alternative<ShowText>(r));
    CHECK(std::get<ShowText>(r).text.find("Exit status") != std::string::npos);
    r = parse({"-V"});
    REQUIRE(std::holds_alternative<ShowText>(r));
    CHECK(std::get<ShowText>(r).text.find("tcpecho-probe ") == 0);
}

TEST_CASE("probe options: durations with units and decimal fractions", "[probe-options]") {
    CHECK(ok({"-t", "1.5s", "h"}).time_us == 1'500'000U);
    CHECK(ok({"-t", "2.25", "h"}).time_us == 2'250'000U);
    CHECK(ok({"--split-delay", "0.5ms", "h"}).split_delay_us == 500U);
    CHECK(ok({"-t", "1.5m", "h"}).time_us == 90'000'000U);
    CHECK(ok({"--split-delay", "250us", "h"}).split_delay_us == 250U);
    CHECK(error({"-t", "0.0001ms", "h"}).find("--time") != std::string::npos);  // finer than 1 us
    CHECK(error({"-t", "1.s", "h"}).find("--time") != std::string::npos);
    CHECK(error({"-t", "1..5s", "h"}).find("--time") != std::string::npos);
    CHECK(error({"h:65536"}).find("port") != std::string::npos);
    CHECK(error({"h:0"}).find("port") != std::string::npos);
    CHECK(ok({"h:echo"}).port == "echo");
}

TEST_CASE("probe options: --udp and its sizes", "[probe-options]") {
    Options o = ok({"--udp", "h:7"});
    CHECK(o.udp);
    CHECK(o.max_loss_percent == 0);
    CHECK(o.shape.size_min == 1024);  // the TCP default size, as each datagram's UDP payload
    CHECK(o.shape.size_max == 1024);
    CHECK(o.count == 1000U);
    CHECK(!ok({"h"}).udp);

    o = ok({"--udp", "-s", "0", "h"});  // an empty datagram is a datagram
    CHECK(o.shape.size_min == 0);
    CHECK(o.shape.size_max == 0);
    o = ok({"--udp", "-s", "65535", "h"});  // accepted here; the kernel decides (EMSGSIZE)
    CHECK(o.shape.size_max == 65535);
    o = ok({"--udp", "-s", "0-1472", "h"});
    CHECK(o.shape.size_min == 0);
    CHECK(o.shape.size_max == 1472);
    CHECK(error({"--udp", "-s", "65536", "h"}).find("--size") != std::string::npos);
    CHECK(error({"--udp", "-s", "64K", "h"}).find("0..65535") != std::string::npos);
    CHECK(error({"--udp", "-s", "0-64K", "h"}).find("--size MAX") != std::string::npos);
    CHECK(error({"--udp", "-s", "30-20", "h"}).find("MIN <= MAX") != std::string::npos);

    o = ok({"--udp", "-c", "100", "-T", "2", "-t", "2s", "--rate", "5000", "--workload", "stream", "--window", "64K",
            "--timeout", "250ms", "--seed", "5", "-m", "raw", "-J", "h"});
    CHECK(o.connections == 100);
    CHECK(o.threads == 2);
    CHECK(o.time_us == 2'000'000U);
    CHECK(o.rate == 5000);
    CHECK(o.workload == Workload::Stream);
    CHECK(o.window == 65536);
    CHECK(o.timeout_us == 250'000);
    CHECK(o.seed == 5);
    CHECK(o.json);
    CHECK(error({"--udp", "--window", "64K", "h"}).find("stream") != std::string::npos);
}

TEST_CASE("probe options: --max-loss", "[probe-options]") {
    CHECK(ok({"--udp", "--max-loss", "0.5", "h"}).max_loss_percent == 0.5);
    CHECK(ok({"--udp", "--max-loss", "0.5%", "h"}).max_loss_percent == 0.5);
    CHECK(ok({"--max-loss", "100%", "--udp", "h"}).max_loss_percent == 100);
    CHECK(ok({"--udp", "--max-loss", "0", "h"}).max_loss_percent == 0);
    CHECK(ok({"--udp", "--max-loss", "12", "h"}).max_loss_percent == 12);
    for (const char* bad : {"101", "-1", "abc", "", "%", "0.5%%", "5 %", " 5", "nan", "inf", "1e3"}) {
        INFO("--max-loss '" << bad << "'");
        CHECK(error({"--udp", "--max-loss", bad, "h"}).find("--max-loss") != std::string::npos);
    }
    CHECK(error({"--max-loss", "1", "h"}).find("--udp only") != std::string::npos);
}

TEST_CASE("probe options: TCP-only options are refused with --udp", "[probe-options]") {
    const std::initializer_list<const char*> cases[] = {
        {"--udp", "-m", "length", "h"},         {"--udp", "--mode", "line", "h"},
        {"-m", "fixed", "--frame-size", "1K", "--udp", "h"},
        {"--udp", "--frame-size", "1K", "h"},   {"--udp", "--recv", "once", "h"},
        {"--udp", "--recv", "lowat=1K", "h"},   {"--udp", "--recv", "loop", "h"},
        {"--udp", "--split", "2", "h"},         {"--split-delay", "1ms", "--udp", "h"},
    };
    for (const auto& args : cases) {
        const std::string e = error(args);
        INFO(e);
        CHECK(e.find("TCP only") != std::string::npos);
        CHECK(e.find("--udp") != std::string::npos);
    }
    CHECK(error({"--udp", "--recv", "waitall", "h"}).find("--recv waitall") != std::string::npos);
    CHECK(error({"--udp", "--split", "4", "h"}).find("--split") != std::string::npos);
    CHECK(ok({"--udp", "-m", "raw", "h"}).udp);  // raw is what a datagram echo is
}

TEST_CASE("probe options: --help documents UDP", "[probe-options]") {
    const std::string help = std::get<ShowText>(parse({"--help"})).text;
    for (const char* word : {"--udp", "--max-loss", "magic", "sequence number", "send time", "lost", "EMSGSIZE",
                             "65507", "65527", "too short for a header"}) {
        INFO(word);
        CHECK(help.find(word) != std::string::npos);
    }
}
