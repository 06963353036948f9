// Helpers the tests of apps/ share: the message of an expected exception,
// fresh temporary folders, reading a file back, and where MNIST is.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "tests/gradcheck.h"

namespace engine::app_test {

// The message of an expected exception: the shared helper of tests/gradcheck.h.
using testing::error_of;

// <system temp folder>/<name>, emptied: removed with everything in it, then
// created again as an empty folder (or left absent when `create` is false,
// for tests of code that must create it).
inline std::string fresh_dir(const std::string& name, bool create = true) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  if (create) std::filesystem::create_directories(dir);
  return dir.string();
}

// The whole content of a file, byte for byte ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The same as bytes.
inline std::vector<uint8_t> read_file_bytes(const std::string& path) {
  const std::string text = read_file(path);
  return std::vector<uint8_t>(text.begin(), text.end());
}

// MNIST as tools/fetch_mnist.sh leaves it: $ENGINE_DATA_DIR, else <repo>/data/mnist
// (ENGINE_TEST_DATA_DIR is <repo>/tests/data).
inline std::string mnist_dir() {
  const char* from_environment = std::getenv("ENGINE_DATA_DIR");
  if (from_environment != nullptr && *from_environment != '\0') return from_environment;
  return (std::filesystem::path(ENGINE_TEST_DATA_DIR) / ".." / ".." / "data" / "mnist").lexically_normal().string();
}

// Whether the four MNIST files (plain or gzipped) are in mnist_dir().
inline bool have_mnist() {
  const std::filesystem::path dir = mnist_dir();
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"})
    if (!std::filesystem::exists(dir / name) && !std::filesystem::exists(dir / (std::string(name) + ".gz")))
      return false;
  return true;
}

}  // namespace engine::app_test

// Skips a test that trains on the real MNIST when it has not been fetched.
#define SKIP_WITHOUT_MNIST()                                                                   \
  if (!::engine::app_test::have_mnist())                                                       \
  GTEST_SKIP() << "MNIST not found in " << ::engine::app_test::mnist_dir()                     \
               << "; run tools/fetch_mnist.sh (or set ENGINE_DATA_DIR) to run this test"
