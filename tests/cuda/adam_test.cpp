// CUDA Adam: the optimiser (one multi-tensor launch per step) against the CPU
// optimiser over several steps, the multi-tensor kernel against the
// single-tensor kernel, and the learning rate read from device memory.
//
// Tolerances: both devices run math::adam_update (kernels/common/adam_math.h)
// with the same float constants, computed once on the host. Either compiler
// may fuse beta * m + (1 - beta) * g into an FMA, so m and v may differ by an
// ulp per step (rtol 1e-6 after three steps, atol 1e-12 for v ~ g^2 * 1e-3),
// and the parameters, which move by ~lr = 1e-2 per step, by an ulp of their
// value (atol 1e-7, rtol 1e-6). The two CUDA kernels are the same function
// compiled by the same compiler: the same bits.
#include <gtest/gtest.h>

#include <cstring>

#include "layers/optim.h"
#include "tests/cuda/cuda_test_util.h"
#ifdef ENGINE_WITH_CUDA
#include "kernels/cuda/adam.h"
#include "kernels/cuda/runtime.h"
#endif

namespace engine {
namespace {

using testing::expect_matches;
using testing::kCuda;
using testing::random_tensor;
using testing::Tolerance;

const std::vector<Shape> kParamShapes = {{1}, {67}, {3, 5, 7}, {10000}, {64, 64, 3, 3}};

std::vector<Tensor> make_params(Device device) {
  std::vector<Tensor> params;
  for (std::size_t k = 0; k < kParamShapes.size(); ++k) {
    Tensor p = random_tensor(kParamShapes[k], 100 + k).to(device);
    p.set_requires_grad();
    params.push_back(p);
  }
  return params;
}

TEST(CudaAdam, OptimizerMatchesCpuOverSteps) {
  ENGINE_SKIP_WITHOUT_CUDA();
  std::vector<Tensor> cpu_params = make_params(Device::cpu()), gpu_params = make_params(kCuda);
  Adam cpu_opt(cpu_params, 1e-2, 0.9, 0.999, 1e-8, /*weight_decay=*/0.01);
  Adam gpu_opt(gpu_params, 1e-2, 0.9, 0.999, 1e-8, 0.01);
  for (int step = 0; step < 3; ++step) {
    for (std::size_t k = 0; k < kParamShapes.size(); ++k) {
      // Parameter 1 gets no gradient in step 1: it is skipped and falls one step
      // behind, so the launch mixes parameters at different t.
      if (k == 1 && step == 1) continue;
      const Tensor g = random_tensor(kParamShapes[k], 1000 * step + k);
      cpu_params[k].set_grad(g.clone());
      gpu_params[k].set_grad(g.to(kCuda));
    }
    cpu_opt.step();
    gpu_opt.step();
    cpu_opt.zero_grad();
    gpu_opt.zero_grad();
    if (step == 1) {  // a schedule changing lr between steps
      cpu_opt.set_lr(5e-3);
      gpu_opt.set_lr(5e-3);
    }
  }
  for (std::size_t k = 0; k < kParamShapes.size(); ++k) {
    const std::string what = "parameter " + std::to_string(k) + " " + shape_str(kParamShapes[k]);
    expect_matches(gpu_params[k], cpu_params[k], Tolerance{1e-7, 1e-6}, what);
    EXPECT_EQ(gpu_opt.step_count(k), cpu_opt.step_count(k)) << what;
  }
  const NamedTensors cpu_state = cpu_opt.state_dict(), gpu_state = gpu_opt.state_dict();
  ASSERT_EQ(cpu_state.size(), gpu_state.size());
  for (std::size_t i = 0; i < cpu_state.size(); ++i) {
    ASSERT_EQ(cpu_state[i].first, gpu_state[i].first);
    if (cpu_state[i].second.dtype() == DType::F32)
      expect_matches(gpu_state[i].second, cpu_state[i].second, Tolerance{1e-12, 1e-6}, cpu_state[i].first);
  }
}

#ifdef ENGINE_WITH_CUDA  // the kernel-level tests below call kernels/cuda directly

// Device tensors for a multi-tensor launch, and the launch's argument buffer.
struct Launch {
  std::vector<Tensor> params, grads, ms, vs;
  std::vector<cuda::AdamTensor> tensors;
  int64_t total_chunks = 0;
  Tensor buffer;  // [tensors][constants] on the device
};

Launch prepare(const std::vector<AdamStepConstants>& constants) {
  Launch l;
  for (std::size_t k = 0; k < kParamShapes.size(); ++k) {
    l.params.push_back(random_tensor(kParamShapes[k], 200 + k).to(kCuda));
    l.grads.push_back(random_tensor(kParamShapes[k], 300 + k).to(kCuda));
    l.ms.push_back(random_tensor(kParamShapes[k], 400 + k, -0.1f, 0.1f).to(kCuda));
    l.vs.push_back(random_tensor(kParamShapes[k], 500 + k, 0.0f, 0.01f).to(kCuda));
    l.tensors.push_back({l.params[k].data<float>(), l.grads[k].data<float>(), l.ms[k].data<float>(),
                         l.vs[k].data<float>(), l.params[k].numel(), 0,
                         static_cast<int64_t>(k % constants.size())});
  }
  l.total_chunks = cuda::plan_adam_chunks(l.tensors.data(), static_cast<int64_t>(l.tensors.size()));
  const std::size_t tensor_bytes = l.tensors.size() * sizeof(cuda::AdamTensor);
  const std::size_t bytes = tensor_bytes + constants.size() * sizeof(AdamStepConstants);
  l.buffer = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, kCuda);
  cuda::copy_host_to_device(l.buffer.raw_data(), l.tensors.data(), tensor_bytes, 0);
  cuda::copy_host_to_device(static_cast<char*>(l.buffer.raw_data()) + tensor_bytes, constants.data(),
                            constants.size() * sizeof(AdamStepConstants), 0);
  return l;
}

void launch(const Launch& l) {
  const char* base = static_cast<const char*>(l.buffer.raw_data());
  const std::size_t tensor_bytes = l.tensors.size() * sizeof(cuda::AdamTensor);
  cuda::adam_step_multi_tensor(reinterpret_cast<const cuda::AdamTensor*>(base),
                               static_cast<int64_t>(l.tensors.size()),
                               reinterpret_cast<const AdamStepConstants*>(base + tensor_bytes), l.total_chunks);
}

AdamStepConstants constants_for(double lr, int t, float weight_decay) {
  AdamStepConstants c{0.9f, 0.1f, 0.999f, 0.001f, 0.0f, 0.0f, 1e-8f, weight_decay};
  c.step_size = static_cast<float>(lr / (1.0 - std::pow(0.9, t)));
  c.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(0.999, t)));
  return c;
}

TEST(CudaAdam, MultiTensorMatchesSingleTensorKernel) {
  ENGINE_SKIP_WITHOUT_CUDA();
  const std::vector<AdamStepConstants> constants = {constants_for(1e-3, 1, 0.0f), constants_for(2e-3, 5, 0.1f)};
  const Launch multi = prepare(constants);
  const Launch single = prepare(constants);  // same seeds: the same starting values
  launch(multi);
  for (std::size_t k = 0; k < kParamShapes.size(); ++k)
    cuda::adam_step(single.params[k].data<float>(), single.grads[k].data<float>(), single.ms[k].data<float>(),
                    single.vs[k].data<float>(), single.params[k].numel(), constants[k % constants.size()]);
  for (std::size_t k = 0; k < kParamShapes.size(); ++k) {
    EXPECT_EQ(testing::float_bits(multi.params[k]), testing::float_bits(single.params[k])) << "param " << k;
    EXPECT_EQ(testing::float_bits(multi.ms[k]), testing::float_bits(single.ms[k])) << "exp_avg " << k;
    EXPECT_EQ(testing::float_bits(multi.vs[k]), testing::float_bits(single.vs[k])) << "exp_avg_sq " << k;
  }
}

TEST(CudaAdam, LearningRateIsReadFromDeviceMemory) {
  ENGINE_SKIP_WITHOUT_CUDA();
  // The same launch arguments replayed after overwriting the constants in
  // device memory with lr = 0: the parameters must not move (the moments do).
  const std::vector<AdamStepConstants> constants = {constants_for(1e-3, 1, 0.0f)};
  Launch l = prepare(constants);
  launch(l);
  std::vector<std::vector<uint32_t>> after_first;
  for (const Tensor& p : l.params) after_first.push_back(testing::float_bits(p));
  const AdamStepConstants frozen = constants_for(0.0, 2, 0.0f);
  cuda::copy_host_to_device(static_cast<char*>(l.buffer.raw_data()) + l.tensors.size() * sizeof(cuda::AdamTensor),
                            &frozen, sizeof frozen, 0);
  const std::vector<uint32_t> m_before = testing::float_bits(l.ms[2]);
  launch(l);
  for (std::size_t k = 0; k < l.params.size(); ++k)
    EXPECT_EQ(testing::float_bits(l.params[k]), after_first[k]) << "lr 0 moved parameter " << k;
  EXPECT_NE(testing::float_bits(l.ms[2]), m_before) << "the moments should still update";
}

#endif  // ENGINE_WITH_CUDA

}  // namespace
}  // namespace engine
