// Test support: running real programs (twinfleet itself, mosquitto, mosquitto_pub/sub,
// prometheus) with every wait bounded and every process stopped.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace twinfleet::test {

struct run_result {
  int exit_code = -1;  // 128 + signal when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs `program` with `args` (stdin from /dev/null) until it exits and both output streams
// close, or until `timeout` (then it is killed and timed_out is set).
run_result run_program(const std::filesystem::path& program, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A program running in the background while a test talks to it. Its stdout and stderr are
// collected. The destructor stops it (SIGTERM, then SIGKILL after a grace period).
class child_process {
 public:
  child_process(const std::filesystem::path& program, const std::vector<std::string>& args);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Reads what the child has written so far (non-blocking) and returns all of stdout / stderr.
  const std::string& out();
  const std::string& err();

  // Polls until `ready()` holds, reading output meanwhile; false after `timeout` or when the
  // child exits first.
  bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

  // True while the child runs.
  bool running();

  // Sends `signal` and waits up to `grace` for the exit; then SIGKILL. Returns the exit code
  // (128 + signal when killed by one). Idempotent.
  int stop(int signal, std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  void pump(int timeout_ms);
  // Where a child that ignores its stop signal is: busy or blocked, each thread's kernel
  // stack, and gdb's backtraces when gdb is installed.
  std::string why_stuck();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  bool exited_ = false;
  int exit_code_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close), for
// programs that cannot be told to pick their own.
unsigned short free_local_port();

}  // namespace twinfleet::test
