// DataLoader: mini-batches over a Dataset, reshuffled every epoch, the way
// torch.utils.data.DataLoader(dataset, batch_size, shuffle=True) serves them.
//
// Each epoch visits every item exactly once. With shuffle on, the order of an
// epoch is engine::randperm(N, generator) (core/rng.h), drawn when the epoch
// starts; the loader owns its Generator, so the sequence of epochs depends
// only on the generator's seed (and offset), never on anything else the
// program draws. Batch b of an epoch holds the items
//   order[b * batch_size], ..., order[min((b + 1) * batch_size, N) - 1]
// so the last batch is partial when batch_size does not divide N; it is kept
// (PyTorch's drop_last=False default) unless drop_last is set.
//
// Usage:
//   DataLoader loader(train, {.batch_size = 128}, Generator(seed));
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch();
//     for (int64_t b = 0; b < loader.num_batches(); ++b) {
//       const Batch batch = loader.batch(b);  // images [B, 1, 28, 28], labels
//       ...
//     }
//   }
// To resume a run mid-way, save loader.generator().offset() with the
// checkpoint (taken before start_epoch) and restore it with set_offset.
//
// Batches are gathered on the host (the dataset lives there); the app moves
// them to its device.
#pragma once
#include <cstdint>
#include <vector>

#include "apps/common/idx.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace engine::data {

struct Batch {
  Tensor images;                 // float [B, ...item shape], e.g. [B, 1, 28, 28]
  std::vector<int64_t> labels;   // B labels
  std::vector<int64_t> indices;  // the dataset items, in batch order

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // The labels one-hot encoded: float [B, num_classes].
  Tensor one_hot(int64_t num_classes = 10) const;
};

// One-hot encoding (torch.nn.functional.one_hot(labels, num_classes).float()):
// float [B, num_classes] with row i all zeros but a 1 at column labels[i].
// Every label must be in [0, num_classes).
Tensor one_hot(const std::vector<int64_t>& labels, int64_t num_classes = 10);

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // a new random order every epoch; else 0, 1, ..., N - 1
  bool drop_last = false;  // drop the last partial batch (PyTorch's default: keep it)
};

class DataLoader {
 public:
  // `dataset.images` must be a float CPU tensor [N, ...] with N = number of
  // labels, N >= 1. The loader keeps its own handle on the images (no copy).
  DataLoader(const Dataset& dataset, const LoaderOptions& options, Generator generator);

  int64_t dataset_size() const { return static_cast<int64_t>(labels_.size()); }
  // Batches per epoch: ceil(N / batch_size), or floor(...) with drop_last.
  int64_t num_batches() const;
  // Epochs started so far (0 before the first start_epoch).
  int64_t epoch() const { return epoch_; }

  // Begins the next epoch; with shuffle, draws its order from the generator.
  void start_epoch();
  // Batch b (0 <= b < num_batches()) of the current epoch.
  Batch batch(int64_t b) const;
  // The current epoch's order of item indices (a permutation of 0..N-1).
  const std::vector<int64_t>& order() const { return order_; }

  Generator& generator() { return generator_; }

 private:
  Tensor images_;
  std::vector<int64_t> labels_;
  LoaderOptions options_;
  Generator generator_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
};

}  // namespace engine::data
