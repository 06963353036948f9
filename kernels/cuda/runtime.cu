// CUDA device plumbing: see runtime.h. Memory comes from the caching
// allocator (allocator.h); copies and memsets run on the current stream
// (stream.h).
//
// Why not plain cudaMemcpy: it runs on the legacy default stream, and the
// engine's stream is created non-blocking, which means it does NOT wait for
// the legacy stream and the legacy stream does not wait for it. A cudaMemcpy
// of a kernel's output could then read the bytes before the kernel has
// written them. Issuing every copy on the engine's stream orders it after
// the kernels that came before it.
#include "kernels/cuda/runtime.h"

#include <cuda_runtime.h>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda {
namespace {

// Why the runtime sees no device ("no CUDA-capable device is detected",
// "CUDA driver version is insufficient", ...), or "" when it sees some.
std::string device_count_problem() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess) return "";
  cudaGetLastError();
  return detail::concat_message(cudaGetErrorName(status), ": ", cudaGetErrorString(status));
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" / "no device" error
    return 0;
  }
  return count;
}

void require_device(int device) {
  static const int count = device_count();  // devices do not come and go while a process runs
  if (device >= 0 && device < count) return;
  const char* advice =
      "; to run on the CPU instead, pass --device cpu to the apps, or create the tensors with Device::cpu() "
      "(or move them there with .to(Device::cpu()))";
  if (count == 0) {
    const std::string problem = device_count_problem();
    throw Error(detail::concat_message("cuda:", device,
                                       " requested, but this machine has no usable CUDA device (the CUDA runtime says: ",
                                       problem.empty() ? "0 devices" : problem, ")", advice));
  }
  throw Error(detail::concat_message("cuda:", device, " requested, but this machine has ", count,
                                     " CUDA device(s) (cuda:0 to cuda:", count - 1, ")", advice));
}

void* raw_malloc(std::size_t bytes, int device) {
  require_device(device);
  return allocate(bytes, device);
}

void raw_free(void* ptr, int /*device*/) noexcept { deallocate(ptr); }

void copy_host_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  // From pageable host memory the driver first copies `src` into its own
  // pinned staging buffer; cudaMemcpyAsync returns after that, so `src` may
  // be freed as soon as we return, while the transfer itself stays ordered
  // on the stream.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, current_stream()));
}

void copy_device_to_host(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  cudaStream_t stream = current_stream();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // the caller reads dst next
}

void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()));
}

void memset_zero(void* dst, std::size_t bytes, int device) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, current_stream()));
}

void synchronize(int device) {
  DeviceGuard guard(device);
  CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}

DeviceGuard::DeviceGuard(int device) {
  CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) {
    CUDA_CHECK(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_) cudaSetDevice(previous_);  // no throw from a destructor; it worked a moment ago
}

}  // namespace engine::cuda
