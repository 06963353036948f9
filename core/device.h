// Where a tensor's memory lives. CUDA devices carry an ordinal.
#pragma once
#include <string>

namespace engine {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// Parses "cpu", "cuda", "cuda:1"; throws engine::Error otherwise.
Device parse_device(const std::string& text);

// Number of usable CUDA devices: 0 in a CPU-only build or on a machine without a GPU.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace engine
