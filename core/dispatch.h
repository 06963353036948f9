// How an op entry point picks its kernel: by the device of its inputs.
//
//   if (x.device().is_cpu()) cpu::gelu_forward(...);
//   else cuda_not_implemented("gelu");   // replaced by cuda::gelu_forward(...)
//
// The kernel functions have the same names and arguments on both backends
// (namespaces engine::cpu and engine::cuda), so each op's dispatch is a pair
// of lines.
#pragma once
#include "core/device.h"
#include "core/error.h"

namespace engine {

[[noreturn]] inline void cuda_not_implemented(const char* op) {
  throw Error(std::string(op) + ": no CUDA kernel yet; move the tensors to the CPU with .to(Device::cpu())");
}

}  // namespace engine
