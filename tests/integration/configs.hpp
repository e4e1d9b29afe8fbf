// TOML snippets for the integration tests: every listener on 127.0.0.1, port 0.
#pragma once

#include <string>

namespace tcpecho::test {

inline std::string listener(const std::string& name, const std::string& mode, const std::string& extra = "",
                            const std::string& address = "127.0.0.1") {
    return "[[listen]]\nname = \"" + name + "\"\naddress = \"" + address + "\"\nport = 0\nmode = \"" + mode +
           "\"\n" + extra + "\n";
}

// workers = 2 by default, so cross-worker behaviour is exercised even on one connection at a time.
inline std::string config(const std::string& body, const std::string& globals = "", unsigned workers = 2) {
    return "workers = " + std::to_string(workers) + "\nlog_level = \"info\"\n" + globals + "\n" + body;
}

inline std::string all_modes_config(const std::string& limits = "") {
    return config(limits + listener("raw", "raw") + listener("fixed", "fixed", "frame_size = 100") +
                  listener("length", "length") + listener("line", "line"));
}

}  // namespace tcpecho::test
