#include "core/device.h"

#include "core/error.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace engine {

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    ENGINE_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos,
                 "device: expected 'cpu', 'cuda' or 'cuda:N', got '", text, "'");
    return Device::cuda(std::stoi(digits));
  }
  throw Error("device: expected 'cpu', 'cuda' or 'cuda:N', got '" + text + "'");
}

int cuda_device_count() {
#ifdef ENGINE_WITH_CUDA
  static const int count = cuda::device_count();
  return count;
#else
  return 0;
#endif
}

}  // namespace engine
