// The CUDA backend's run-time switches: see engine_select.h.
#include "kernels/cuda/engine_select.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace engine::cuda {
namespace {

constexpr std::size_t kDefaultCudnnWorkspaceLimit = std::size_t{256} << 20;  // 256 MiB

// The engines start from the environment, read on first use. A bad value
// throws from that first use (and again on every later one, so that it cannot
// be missed) rather than quietly picking the default.
ConvEngine conv_engine_from_environment() {
  const char* value = std::getenv("ENGINE_CONV_ENGINE");
  return value == nullptr || *value == '\0' ? ConvEngine::cudnn
                                            : parse_conv_engine(value, "environment variable ENGINE_CONV_ENGINE");
}

GemmEngine gemm_engine_from_environment() {
  const char* value = std::getenv("ENGINE_GEMM_ENGINE");
  return value == nullptr || *value == '\0' ? GemmEngine::cublas
                                            : parse_gemm_engine(value, "environment variable ENGINE_GEMM_ENGINE");
}

// -1: not yet read from the environment; otherwise the enum's value.
std::atomic<int> g_conv_engine{-1};
std::atomic<int> g_gemm_engine{-1};
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_cudnn_deterministic{true};
std::atomic<bool> g_cudnn_benchmark{false};
std::atomic<std::size_t> g_cudnn_workspace_limit{kDefaultCudnnWorkspaceLimit};

}  // namespace

const char* engine_name(ConvEngine engine) { return engine == ConvEngine::cudnn ? "cudnn" : "implicit_gemm"; }
const char* engine_name(GemmEngine engine) { return engine == GemmEngine::cublas ? "cublas" : "own"; }

ConvEngine parse_conv_engine(const std::string& text, const char* what) {
  if (text == "cudnn") return ConvEngine::cudnn;
  if (text == "implicit_gemm") return ConvEngine::implicit_gemm;
  throw Error(detail::concat_message(what, ": expected a convolution engine 'cudnn' or 'implicit_gemm', got '", text,
                                     "'"));
}

GemmEngine parse_gemm_engine(const std::string& text, const char* what) {
  if (text == "cublas") return GemmEngine::cublas;
  if (text == "own") return GemmEngine::own;
  throw Error(detail::concat_message(what, ": expected a GEMM engine 'cublas' or 'own', got '", text, "'"));
}

ConvEngine conv_engine() {
  int value = g_conv_engine.load();
  if (value < 0) {
    value = static_cast<int>(conv_engine_from_environment());
    int expected = -1;  // a concurrent set_conv_engine wins over the environment
    if (!g_conv_engine.compare_exchange_strong(expected, value)) value = expected;
  }
  return static_cast<ConvEngine>(value);
}

void set_conv_engine(ConvEngine engine) { g_conv_engine.store(static_cast<int>(engine)); }

GemmEngine gemm_engine() {
  int value = g_gemm_engine.load();
  if (value < 0) {
    value = static_cast<int>(gemm_engine_from_environment());
    int expected = -1;
    if (!g_gemm_engine.compare_exchange_strong(expected, value)) value = expected;
  }
  return static_cast<GemmEngine>(value);
}

void set_gemm_engine(GemmEngine engine) { g_gemm_engine.store(static_cast<int>(engine)); }

bool allow_tf32() { return g_allow_tf32.load(); }
void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }

bool cudnn_deterministic() { return g_cudnn_deterministic.load(); }
void set_cudnn_deterministic(bool deterministic) { g_cudnn_deterministic.store(deterministic); }

bool cudnn_benchmark() { return g_cudnn_benchmark.load(); }
void set_cudnn_benchmark(bool benchmark) { g_cudnn_benchmark.store(benchmark); }

std::size_t cudnn_workspace_limit() { return g_cudnn_workspace_limit.load(); }
void set_cudnn_workspace_limit(std::size_t bytes) { g_cudnn_workspace_limit.store(bytes); }

}  // namespace engine::cuda
