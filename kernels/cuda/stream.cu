#include "kernels/cuda/stream.h"

#include <mutex>
#include <vector>

#include "kernels/cuda/check.h"

namespace engine::cuda {
namespace {

thread_local cudaStream_t t_override = nullptr;
std::mutex g_mutex;
std::vector<cudaStream_t> g_default_streams;  // one per device, created lazily

}  // namespace

cudaStream_t current_stream() {
  if (t_override != nullptr) return t_override;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(g_mutex);
  if (static_cast<int>(g_default_streams.size()) <= device) g_default_streams.resize(device + 1, nullptr);
  if (g_default_streams[device] == nullptr)
    CUDA_CHECK(cudaStreamCreateWithFlags(&g_default_streams[device], cudaStreamNonBlocking));
  return g_default_streams[device];
}

void set_current_stream(cudaStream_t stream) { t_override = stream; }

}  // namespace engine::cuda
