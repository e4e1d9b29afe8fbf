// A small streaming JSON writer: enough for one report document, with correct escaping and
// commas, and no dependency.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace tcpecho {

class JsonWriter {
public:
    void begin_object(std::string_view key = {}) { open(key, '{'); }
    void end_object() { close('}'); }
    void begin_array(std::string_view key = {}) { open(key, '['); }
    void end_array() { close(']'); }

    void value(std::string_view key, std::string_view text) {
        prefix(key);
        quoted(text);
    }
    void value(std::string_view key, const char* text) { value(key, std::string_view(text)); }
    void value(std::string_view key, bool b) {
        prefix(key);
        out_ += b ? "true" : "false";
    }
    void value(std::string_view key, std::uint64_t n) {
        prefix(key);
        out_ += std::to_string(n);
    }
    void value(std::string_view key, unsigned n) { value(key, std::uint64_t{n}); }
    void value(std::string_view key, int n) {
        prefix(key);
        out_ += std::to_string(n);
    }
    void value(std::string_view key, double d) {
        prefix(key);
        if (!std::isfinite(d)) {
            out_ += "null";  // JSON has no NaN or infinity
            return;
        }
        char b[40];
        std::snprintf(b, sizeof b, "%.6g", d);
        out_ += b;
    }
    void null(std::string_view key) {
        prefix(key);
        out_ += "null";
    }

    [[nodiscard]] const std::string& text() const noexcept { return out_; }

private:
    void open(std::string_view key, char bracket) {
        prefix(key);
        out_ += bracket;
        first_.push_back(true);
    }
    void close(char bracket) {
        first_.pop_back();
        out_ += bracket;
    }
    void prefix(std::string_view key) {
        if (!first_.empty()) {
            if (!first_.back()) out_ += ',';
            first_.back() = false;
        }
        if (!key.empty()) {
            quoted(key);
            out_ += ':';
        }
    }
    void quoted(std::string_view s) {
        out_ += '"';
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                out_ += '\\';
                out_ += c;
            } else if (u < 0x20 || u >= 0x80) {
                // Control characters, and any non-ASCII byte (read as Latin-1): the document
                // stays valid JSON whatever bytes a host name argument holds.
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", u);
                out_ += b;
            } else {
                out_ += c;
            }
        }
        out_ += '"';
    }

    std::string out_;
    std::vector<bool> first_;
};

}  // namespace tcpecho
