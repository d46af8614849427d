// Test support: where test data lives, temporary folders, reading files.
#pragma once

#include <filesystem>
#include <string>

namespace twinfleet::test {

// tests/data in the source tree.
std::filesystem::path data_dir();

// The whole file as bytes; throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// A fresh empty folder under the system temp dir, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace twinfleet::test
