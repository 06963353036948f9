// Run-time switches of the CUDA backend's compute engines.
//
// Convolutions and matrix products each have two implementations on the GPU,
// chosen here at run time (the same program, the same tensors):
//
//   ConvEngine::cudnn          NVIDIA's cuDNN (kernels/cuda/conv_cudnn.h)
//   ConvEngine::implicit_gemm  our own implicit-GEMM kernels (kernels/cuda/conv_implicit_gemm.h)
//   GemmEngine::cublas         NVIDIA's cuBLAS (kernels/cuda/cublas.h)
//   GemmEngine::own            our own tiled GEMM (kernels/cuda/gemm.h)
//
// Defaults: cudnn and cublas (the fastest). The environment variables
//   ENGINE_CONV_ENGINE=cudnn|implicit_gemm
//   ENGINE_GEMM_ENGINE=cublas|own
// set the starting value (read once, on first use); set_conv_engine /
// set_gemm_engine override it. An unknown value is an error naming the
// variable, the value and the choices (never a silent default).
//
// The other switches:
//   allow_tf32            TF32 tensor-core math in cuDNN and cuBLAS. Off by
//                         default: TF32 rounds the inputs of every product to
//                         10 mantissa bits (relative error ~5e-4), which breaks
//                         parity with the CPU backend. Our own kernels always
//                         compute in plain float32.
//   cudnn_deterministic   only algorithms cuDNN reports as deterministic
//                         (same bits on every run). On by default, as the
//                         engine's convention is "same seed, same bits".
//   cudnn_benchmark       pick each shape's algorithms by timing them all
//                         once (cudnnFind*) instead of by cuDNN's heuristics
//                         (cudnnGet*_v7). Off by default: timings are noisy,
//                         so the choice, and the last bits of the results,
//                         could change from run to run.
//   cudnn_workspace_limit the most scratch memory (bytes) one cuDNN call may
//                         use; algorithms that need more are skipped.
//                         Default 256 MiB.
//
// Every switch is process-wide and may be changed at any time; cuDNN's
// algorithm cache is keyed by the switches too, so a change takes effect on
// the next call. This file is plain C++ (no CUDA headers), so tests and apps
// may include it anywhere.
#pragma once
#include <cstddef>
#include <string>

namespace engine::cuda {

enum class ConvEngine { cudnn, implicit_gemm };
enum class GemmEngine { cublas, own };

ConvEngine conv_engine();
void set_conv_engine(ConvEngine engine);
GemmEngine gemm_engine();
void set_gemm_engine(GemmEngine engine);

// "cudnn" / "implicit_gemm", "cublas" / "own".
const char* engine_name(ConvEngine engine);
const char* engine_name(GemmEngine engine);
// The inverse; throws engine::Error quoting `what` (e.g. the variable name),
// the text and the accepted names.
ConvEngine parse_conv_engine(const std::string& text, const char* what);
GemmEngine parse_gemm_engine(const std::string& text, const char* what);

bool allow_tf32();
void set_allow_tf32(bool allow);

bool cudnn_deterministic();
void set_cudnn_deterministic(bool deterministic);

bool cudnn_benchmark();
void set_cudnn_benchmark(bool benchmark);

std::size_t cudnn_workspace_limit();
void set_cudnn_workspace_limit(std::size_t bytes);

// Sets a switch for the lifetime of a scope, then restores the old value
// (tests and benchmarks run both engines one after the other).
class ConvEngineScope {
 public:
  explicit ConvEngineScope(ConvEngine engine) : saved_(conv_engine()) { set_conv_engine(engine); }
  ~ConvEngineScope() { set_conv_engine(saved_); }
  ConvEngineScope(const ConvEngineScope&) = delete;
  ConvEngineScope& operator=(const ConvEngineScope&) = delete;

 private:
  ConvEngine saved_;
};

class GemmEngineScope {
 public:
  explicit GemmEngineScope(GemmEngine engine) : saved_(gemm_engine()) { set_gemm_engine(engine); }
  ~GemmEngineScope() { set_gemm_engine(saved_); }
  GemmEngineScope(const GemmEngineScope&) = delete;
  GemmEngineScope& operator=(const GemmEngineScope&) = delete;

 private:
  GemmEngine saved_;
};

}  // namespace engine::cuda
