#include "daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tcpecho::test {

namespace {

std::string daemon_path() {
    const char* p = std::getenv("TCPECHOD");
    if (p == nullptr) throw std::runtime_error("TCPECHOD is not set (run the tests through meson test)");
    return p;
}

}  // namespace

std::string write_temp_file(const std::string& text, const std::string& suffix) {
    std::string templ = "/tmp/tcpecho-test-XXXXXX" + suffix;
    std::vector<char> name(templ.begin(), templ.end());
    name.push_back('\0');
    int fd = ::mkstemps(name.data(), static_cast<int>(suffix.size()));
    if (fd < 0) throw std::runtime_error("mkstemps failed");
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        ::close(fd);
        throw std::runtime_error("write temp file failed");
    }
    ::close(fd);
    return name.data();
}

DaemonProcess::DaemonProcess(const DaemonOptions& options) {
    config_path_ = write_temp_file(options.config);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::string path = daemon_path();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::dup2(pipefd[1], STDERR_FILENO);
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(devnull, STDOUT_FILENO);
        if (options.rlimit_nofile) {
            rlimit rl{*options.rlimit_nofile, *options.rlimit_nofile};
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
        ::unsetenv("JOURNAL_STREAM");
        if (options.journal_stream) {
            struct stat st {};
            ::fstat(STDERR_FILENO, &st);
            std::string value = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
            ::setenv("JOURNAL_STREAM", value.c_str(), 1);
        }
        for (const auto& e : options.extra_env) ::putenv(const_cast<char*>(e.c_str()));
        ::execl(path.c_str(), path.c_str(), "--config", config_path_.c_str(), static_cast<char*>(nullptr));
        std::fprintf(stderr, "exec %s: %s\n", path.c_str(), std::strerror(errno));
        ::_exit(127);
    }
    ::close(pipefd[1]);
    log_fd_ = pipefd[0];
    reader_ = std::thread([this] { read_log(); });
    if (!wait_for_log("ready:", std::chrono::seconds(10))) {
        // The destructor does not run for a constructor that throws: end the child and the
        // log reader here, or the joinable thread's destructor aborts the whole test program
        // instead of reporting this.
        std::string log = log_text();
        ::kill(pid_, SIGKILL);  // our own child, by PID
        ::waitpid(pid_, nullptr, 0);
        if (reader_.joinable()) reader_.join();
        ::close(log_fd_);
        ::unlink(config_path_.c_str());
        throw std::runtime_error("tcpechod did not become ready; log:\n" + log);
    }
}

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0) {
        bool gone = false;
        {
            std::lock_guard lock(mutex_);
            gone = exited_;
        }
        if (!gone) {
            ::kill(pid_, SIGKILL);  // our own child, by PID
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (reader_.joinable()) reader_.join();
    if (log_fd_ >= 0) ::close(log_fd_);
    ::unlink(config_path_.c_str());
}

void DaemonProcess::read_log() {
    std::string partial;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(log_fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl = 0;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::string line = partial.substr(0, nl);
            partial.erase(0, nl + 1);
            std::lock_guard lock(mutex_);
            auto at = line.find("listening name=");
            if (at != std::string::npos) {
                std::string name = line.substr(at + 15, line.find(' ', at + 15) - (at + 15));
                auto colon = line.rfind(':');
                ports_[name] = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
            }
            lines_.push_back(std::move(line));
            cv_.notify_all();
        }
    }
    std::lock_guard lock(mutex_);
    exited_ = true;
    cv_.notify_all();
}

std::uint16_t DaemonProcess::port(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = ports_.find(name);
    if (it == ports_.end()) throw std::runtime_error("no listener named " + name);
    return it->second;
}

void DaemonProcess::signal(int signum) const { ::kill(pid_, signum); }

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            if (reader_.joinable()) reader_.join();
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
}

bool DaemonProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::size_t checked = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (; checked < lines_.size(); ++checked) {
            if (lines_[checked].find(needle) != std::string::npos) return true;
        }
        if (exited_) return false;
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
            for (; checked < lines_.size(); ++checked) {
                if (lines_[checked].find(needle) != std::string::npos) return true;
            }
            return false;
        }
    }
}

std::string DaemonProcess::log_text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
}

std::uint64_t DaemonProcess::counter(const std::string& name) {
    std::size_t before = 0;
    {
        std::lock_guard lock(mutex_);
        before = lines_.size();
    }
    signal(SIGUSR1);
    std::unique_lock lock(mutex_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        for (std::size_t i = before; i < lines_.size(); ++i) {
            if (lines_[i].find("notice: counters ") == std::string::npos) continue;
            auto at = lines_[i].find(" " + name + "=");
            if (at == std::string::npos) throw std::runtime_error("no counter " + name);
            return std::stoull(lines_[i].substr(at + name.size() + 2));
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) throw std::runtime_error("no counters line");
    }
}

long DaemonProcess::rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

int DaemonProcess::fd_count() const {
    std::string dir = "/proc/" + std::to_string(pid_) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return -1;
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    return n;
}

long DaemonProcess::cpu_ticks() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close_paren = all.rfind(')');
    std::istringstream fields(all.substr(close_paren + 2));
    std::string f;
    long utime = 0;
    long stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::stol(f);
        if (i == 15) stime = std::stol(f);
    }
    return utime + stime;
}

std::pair<int, std::string> run_tcpechod(const std::vector<std::string>& args) {
    std::string cmd = daemon_path();
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) throw std::runtime_error("popen failed");
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace tcpecho::test
