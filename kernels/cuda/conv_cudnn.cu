// Convolutions through cuDNN: see conv_cudnn.h for the contract and the way
// algorithms are chosen.
//
// A PLAN holds everything cuDNN needs for one convolution shape under one set
// of switches: the tensor, filter and convolution descriptors, and for each
// of the three passes the chosen algorithm, its math type and its workspace
// size. Plans live in a map keyed by (device, ConvParams, switches) for the
// life of the process; each pass's algorithm is chosen on its first use.
#include "kernels/cuda/conv_cudnn.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_select.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace engine::cuda::cudnn {
namespace {

// --- Handles: one per device -------------------------------------------------

std::mutex g_handle_mutex;
std::vector<cudnnHandle_t> g_handles;  // by device; kept until the process exits

cudnnHandle_t handle_for_current_stream() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudnnHandle_t handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_handle_mutex);
    if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(static_cast<std::size_t>(device) + 1, nullptr);
    if (g_handles[static_cast<std::size_t>(device)] == nullptr) {
      cudnnHandle_t created = nullptr;
      const cudnnStatus_t status = cudnnCreate(&created);
      ENGINE_CHECK(status == CUDNN_STATUS_SUCCESS, "cuDNN: cudnnCreate failed on cuda:", device, ": ",
                   cudnnGetErrorString(status), "; is cuDNN 9 installed (libcudnn_cnn, libcudnn_ops) and does it",
                   " match the driver? Use ENGINE_CONV_ENGINE=implicit_gemm to run the convolutions without cuDNN");
      g_handles[static_cast<std::size_t>(device)] = created;
    }
    handle = g_handles[static_cast<std::size_t>(device)];
  }
  CUDNN_CHECK(cudnnSetStream(handle, current_stream()));
  return handle;
}

// --- Descriptors (RAII) ---------------------------------------------------------

int checked_int(int64_t value, const char* what) {
  ENGINE_CHECK(value >= 0 && value <= (int64_t{1} << 31) - 1, "cuDNN convolution: ", what, " = ", value,
               " does not fit cuDNN's int descriptors");
  return static_cast<int>(value);
}

struct TensorDescriptor {
  cudnnTensorDescriptor_t desc = nullptr;
  TensorDescriptor(int64_t n, int64_t c, int64_t h, int64_t w) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, checked_int(n, "batch"),
                                           checked_int(c, "channels"), checked_int(h, "height"),
                                           checked_int(w, "width")));
  }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

struct FilterDescriptor {
  cudnnFilterDescriptor_t desc = nullptr;
  explicit FilterDescriptor(const ConvParams& p) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc));
    // cuDNN's filter is K x C x R x S = out_channels x in_channels x kernel_h x kernel_w.
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                           checked_int(p.out_channels, "out_channels"),
                                           checked_int(p.in_channels, "in_channels"),
                                           checked_int(p.kernel_h, "kernel_h"), checked_int(p.kernel_w, "kernel_w")));
  }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};

struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t desc = nullptr;
  ConvolutionDescriptor(const ConvParams& p, cudnnMathType_t math) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc));
    // PyTorch's conv2d is a cross-correlation (the kernel is not flipped).
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc, checked_int(p.padding, "padding"),
                                                checked_int(p.padding, "padding"), checked_int(p.stride, "stride"),
                                                checked_int(p.stride, "stride"), 1, 1, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    set_math(math);
  }
  void set_math(cudnnMathType_t math) { CUDNN_CHECK(cudnnSetConvolutionMathType(desc, math)); }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};

// --- Plans and the algorithm cache -----------------------------------------------

enum Pass { kForward = 0, kBackwardData = 1, kBackwardFilter = 2, kPasses = 3 };
const char* const kPassNames[kPasses] = {"fwd", "bwd_data", "bwd_filter"};

const char* algorithm_name(Pass pass, int algo) {
  static const char* const forward[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                        "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                       "FFT_TILING"};
  if (pass == kForward && algo >= 0 && algo < 8) return forward[algo];
  if (pass == kBackwardData && algo >= 0 && algo < 6) return data[algo];
  if (pass == kBackwardFilter && algo >= 0 && algo < 7) return filter[algo];
  return "?";
}

struct Switches {
  bool deterministic;
  bool tf32;
  bool benchmark;
  std::size_t workspace_limit;
};

Switches current_switches() {
  return {cudnn_deterministic(), allow_tf32(), cudnn_benchmark(), cudnn_workspace_limit()};
}

struct PlanKey {
  int device;
  ConvParams conv;
  Switches switches;

  auto tied() const {
    const ConvParams& p = conv;
    return std::make_tuple(device, p.batch, p.in_channels, p.in_height, p.in_width, p.out_channels, p.out_height,
                           p.out_width, p.kernel_h, p.kernel_w, p.stride, p.padding, p.output_padding,
                           switches.deterministic, switches.tf32, switches.benchmark, switches.workspace_limit);
  }
  bool operator<(const PlanKey& other) const { return tied() < other.tied(); }
};

struct Choice {
  bool chosen = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  std::size_t workspace = 0;
};

struct Plan {
  explicit Plan(const ConvParams& p, cudnnMathType_t math)
      : in(p.batch, p.in_channels, p.in_height, p.in_width),
        out(p.batch, p.out_channels, p.out_height, p.out_width),
        in_bias(1, p.in_channels, 1, 1),
        out_bias(1, p.out_channels, 1, 1),
        weight(p),
        conv{ConvolutionDescriptor(p, math), ConvolutionDescriptor(p, math), ConvolutionDescriptor(p, math)} {}
  TensorDescriptor in, out, in_bias, out_bias;
  FilterDescriptor weight;
  ConvolutionDescriptor conv[kPasses];  // one per pass: each carries its algorithm's math type
  Choice choice[kPasses];
};

std::mutex g_cache_mutex;
std::map<PlanKey, std::unique_ptr<Plan>> g_plans;

// Keeps the first result of cuDNN's ranking that satisfies the switches.
template <typename Perf>
Choice first_acceptable(const Perf* results, int count, const Switches& s) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS) continue;
    if (s.deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
    if (r.memory > s.workspace_limit) continue;
    if (!s.tf32 && r.mathType != CUDNN_FMA_MATH) continue;
    Choice c;
    c.chosen = true;
    c.algo = static_cast<int>(r.algo);
    c.math = r.mathType;
    c.workspace = r.memory;
    return c;
  }
  return Choice{};
}

std::string describe_shape(const ConvParams& p) {
  return detail::concat_message("in [", p.batch, ", ", p.in_channels, ", ", p.in_height, ", ", p.in_width,
                                "], out [", p.batch, ", ", p.out_channels, ", ", p.out_height, ", ", p.out_width,
                                "], kernel ", p.kernel_h, "x", p.kernel_w, ", stride ", p.stride, ", padding ",
                                p.padding);
}

// Chooses the algorithm of `pass` for the plan (once; the caller holds the cache lock).
void choose(cudnnHandle_t handle, Plan& plan, Pass pass, const PlanKey& key) {
  constexpr int kMaxResults = 16;  // more than any pass has algorithms
  int returned = 0;
  Choice c;
  cudnnConvolutionDescriptor_t conv = plan.conv[pass].desc;
  if (pass == kForward) {
    cudnnConvolutionFwdAlgoPerf_t results[kMaxResults];
    if (key.switches.benchmark)
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle, plan.in.desc, plan.weight.desc, conv, plan.out.desc,
                                                       kMaxResults, &returned, results));
    else
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, plan.in.desc, plan.weight.desc, conv, plan.out.desc,
                                                         kMaxResults, &returned, results));
    c = first_acceptable(results, returned, key.switches);
    if (!c.chosen) {
      c.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
      CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, plan.in.desc, plan.weight.desc, conv, plan.out.desc,
                                                          CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &c.workspace));
    }
  } else if (pass == kBackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t results[kMaxResults];
    if (key.switches.benchmark)
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle, plan.weight.desc, plan.out.desc, conv,
                                                            plan.in.desc, kMaxResults, &returned, results));
    else
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, plan.weight.desc, plan.out.desc, conv,
                                                              plan.in.desc, kMaxResults, &returned, results));
    c = first_acceptable(results, returned, key.switches);
    if (!c.chosen) {
      c.algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, plan.weight.desc, plan.out.desc, conv,
                                                               plan.in.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                                               &c.workspace));
    }
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t results[kMaxResults];
    if (key.switches.benchmark)
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle, plan.in.desc, plan.out.desc, conv,
                                                              plan.weight.desc, kMaxResults, &returned, results));
    else
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, plan.in.desc, plan.out.desc, conv,
                                                                plan.weight.desc, kMaxResults, &returned, results));
    c = first_acceptable(results, returned, key.switches);
    if (!c.chosen) {
      c.algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, plan.in.desc, plan.out.desc, conv,
                                                                 plan.weight.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                                 &c.workspace));
    }
  }
  if (!c.chosen) {  // the fallback: a fixed deterministic FMA algorithm
    c.math = CUDNN_FMA_MATH;
    ENGINE_CHECK(c.workspace <= key.switches.workspace_limit, "cuDNN ", kPassNames[pass], ": no algorithm for ",
                 describe_shape(key.conv), " fits the workspace limit of ", key.switches.workspace_limit,
                 " bytes (the fallback ", algorithm_name(pass, c.algo), " needs ", c.workspace,
                 "); raise it with set_cudnn_workspace_limit or use ENGINE_CONV_ENGINE=implicit_gemm");
    c.chosen = true;
  }
  plan.conv[pass].set_math(c.math);
  plan.choice[pass] = c;
}

// The plan for `conv` under the current switches, with `pass` chosen. The
// returned reference stays valid: plans are never removed except by
// clear_algorithm_cache (which the caller must not race with a convolution).
Plan& plan_for(cudnnHandle_t handle, const ConvParams& conv, Pass pass) {
  ENGINE_CHECK(conv.out_height == conv2d_output_size(conv.in_height, conv.kernel_h, conv.stride, conv.padding) &&
                   conv.out_width == conv2d_output_size(conv.in_width, conv.kernel_w, conv.stride, conv.padding),
               "cuDNN convolution: out ", conv.out_height, "x", conv.out_width, " is not the convolution's output size",
               " for ", describe_shape(conv));
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  PlanKey key{device, conv, current_switches()};
  key.conv.output_padding = 0;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  std::unique_ptr<Plan>& plan = g_plans[key];
  // TF32 off: FMA math only. On: cuDNN's default, which allows TF32 tensor cores.
  if (!plan) plan = std::make_unique<Plan>(key.conv, key.switches.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
  if (!plan->choice[pass].chosen) choose(handle, *plan, pass, key);
  return *plan;
}

// Workspace memory for one call, from the engine's allocator (stream-ordered:
// safe to release while the call is still queued).
class Workspace {
 public:
  explicit Workspace(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ == 0) return;
    CUDA_CHECK(cudaGetDevice(&device_));
    ptr_ = raw_malloc(bytes_, device_);
  }
  ~Workspace() {
    if (ptr_ != nullptr) raw_free(ptr_, device_);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_ = 0;
  int device_ = 0;
  void* ptr_ = nullptr;
};

const float kOne = 1.0f;
const float kZero = 0.0f;

}  // namespace

void conv_forward(const ConvParams& conv, const float* in, const float* weight, const float* bias, float* out,
                  bool accumulate) {
  if (conv.batch == 0) return;
  cudnnHandle_t handle = handle_for_current_stream();
  Plan& plan = plan_for(handle, conv, kForward);
  const Choice& c = plan.choice[kForward];
  Workspace workspace(c.workspace);
  CUDNN_CHECK(cudnnConvolutionForward(handle, &kOne, plan.in.desc, in, plan.weight.desc, weight,
                                      plan.conv[kForward].desc, static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                      workspace.data(), workspace.bytes(), accumulate ? &kOne : &kZero,
                                      plan.out.desc, out));
  if (bias != nullptr) CUDNN_CHECK(cudnnAddTensor(handle, &kOne, plan.out_bias.desc, bias, &kOne, plan.out.desc, out));
}

void conv_backward_data(const ConvParams& conv, const float* out_grad, const float* weight, const float* bias,
                        float* in_grad, bool accumulate) {
  if (conv.batch == 0) return;
  cudnnHandle_t handle = handle_for_current_stream();
  Plan& plan = plan_for(handle, conv, kBackwardData);
  const Choice& c = plan.choice[kBackwardData];
  Workspace workspace(c.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardData(handle, &kOne, plan.weight.desc, weight, plan.out.desc, out_grad,
                                           plan.conv[kBackwardData].desc,
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), workspace.data(),
                                           workspace.bytes(), accumulate ? &kOne : &kZero, plan.in.desc, in_grad));
  if (bias != nullptr)
    CUDNN_CHECK(cudnnAddTensor(handle, &kOne, plan.in_bias.desc, bias, &kOne, plan.in.desc, in_grad));
}

void conv_backward_weight(const ConvParams& conv, const float* in, const float* out_grad, float* weight_grad) {
  if (conv.batch == 0) return;
  cudnnHandle_t handle = handle_for_current_stream();
  Plan& plan = plan_for(handle, conv, kBackwardFilter);
  const Choice& c = plan.choice[kBackwardFilter];
  Workspace workspace(c.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, &kOne, plan.in.desc, in, plan.out.desc, out_grad,
                                             plan.conv[kBackwardFilter].desc,
                                             static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), workspace.data(),
                                             workspace.bytes(), &kOne, plan.weight.desc, weight_grad));
}

void conv_backward_bias(int64_t batch, int64_t channels, int64_t pixels, const float* grad, float* bias_grad) {
  if (batch == 0 || channels == 0 || pixels == 0) return;
  cudnnHandle_t handle = handle_for_current_stream();
  TensorDescriptor grad_desc(batch, channels, pixels, 1);
  TensorDescriptor bias_desc(1, channels, 1, 1);
  CUDNN_CHECK(cudnnConvolutionBackwardBias(handle, &kOne, grad_desc.desc, grad, &kOne, bias_desc.desc, bias_grad));
}

std::size_t algorithm_cache_size() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  std::size_t count = 0;
  for (const auto& entry : g_plans)
    for (const Choice& c : entry.second->choice) count += c.chosen ? 1 : 0;
  return count;
}

void clear_algorithm_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  g_plans.clear();
}

std::string chosen_algorithms(const ConvParams& conv) {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  PlanKey key{device, conv, current_switches()};
  key.conv.output_padding = 0;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  const auto found = g_plans.find(key);
  std::string text;
  for (int pass = 0; pass < kPasses; ++pass) {
    if (pass > 0) text += ", ";
    text += kPassNames[pass];
    text += ' ';
    const bool chosen = found != g_plans.end() && found->second->choice[pass].chosen;
    text += chosen ? algorithm_name(static_cast<Pass>(pass), found->second->choice[pass].algo) : "-";
  }
  return text;
}

}  // namespace engine::cuda::cudnn
