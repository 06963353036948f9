// Adam on the GPU: ONE kernel launch updates every parameter tensor of the
// model (a "multi-tensor" launch), instead of one launch per tensor. A UNet
// has ~50 parameter tensors, most of them tiny (biases, BatchNorm weights):
// launched one by one, the step would be dominated by launch overhead.
//
// The launch is described by two DEVICE arrays:
//   tensors[t]     where parameter t and its gradient and moments live
//                  (AdamTensor below), and where its blocks start;
//   constants[j]   the per-step scalars of kernels/common/adam_math.h
//                  (step size = lr / (1 - beta1^t), sqrt(1 - beta2^t), ...).
// Because the learning rate and the bias corrections are read from device
// memory at run time, not baked into the launch, a step captured in a CUDA
// graph can be replayed with a new learning rate: write the new constants
// into the same device array and replay.
//
// The per-element update is math::adam_update (kernels/common/adam_math.h),
// the same function the CPU loop calls.
#pragma once
#include <cstdint>

#include "kernels/common/adam_math.h"

namespace engine::cuda {

// Elements per block of the multi-tensor launch: a tensor of n elements gets
// ceil(n / kAdamChunk) consecutive blocks.
constexpr int64_t kAdamChunk = 4096;

// One parameter tensor of a multi-tensor step (all pointers on one device).
struct AdamTensor {
  float* param;
  const float* grad;
  float* exp_avg;          // m
  float* exp_avg_sq;       // v
  int64_t numel;
  int64_t first_chunk;     // index of its first block: set by plan_adam_chunks
  int64_t constants_index; // which constants[] entry it uses (parameters may be at different steps t)
};

// Host: sets tensors[t].first_chunk to the running sum of the chunk counts
// ceil(numel / kAdamChunk) of tensors 0 .. t-1, and returns the total, the
// number of blocks the launch needs.
int64_t plan_adam_chunks(AdamTensor* tensors, int64_t count);

// ONE launch: for each tensor t < count and i < numel:
//   adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], constants[t.constants_index]).
// tensors (planned by plan_adam_chunks) and constants are DEVICE arrays.
void adam_step_multi_tensor(const AdamTensor* tensors, int64_t count, const AdamStepConstants* constants,
                            int64_t total_chunks);

// The single-tensor twin of cpu::adam_step (same arguments, device pointers,
// constants by value): the reference the multi-tensor launch is tested
// against.
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamStepConstants& c);

}  // namespace engine::cuda
