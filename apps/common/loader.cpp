// DataLoader: shuffled mini-batches over a Dataset. See loader.h.
#include "apps/common/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace engine::data {

Tensor one_hot(const std::vector<int64_t>& labels, int64_t num_classes) {
  ENGINE_CHECK(num_classes >= 1, "one_hot: argument 'num_classes': expected >= 1, got ", num_classes);
  const auto batch = static_cast<int64_t>(labels.size());
  Tensor encoded = Tensor::zeros({batch, num_classes});
  float* out = encoded.data<float>();
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t label = labels[static_cast<size_t>(i)];
    ENGINE_CHECK(label >= 0 && label < num_classes, "one_hot: argument 'labels': expected values in [0, ",
                 num_classes, "), got ", label, " at index ", i);
    out[i * num_classes + label] = 1.0f;
  }
  return encoded;
}

Tensor Batch::one_hot(int64_t num_classes) const { return data::one_hot(labels, num_classes); }

DataLoader::DataLoader(const Dataset& dataset, const LoaderOptions& options, Generator generator)
    : images_(dataset.images), labels_(dataset.labels), options_(options), generator_(generator) {
  check_defined("DataLoader", "dataset.images", images_);
  check_float32("DataLoader", "dataset.images", images_);
  ENGINE_CHECK(images_.device().is_cpu(), "DataLoader: argument 'dataset.images': expected a CPU tensor, got ",
               images_.str());
  ENGINE_CHECK(images_.dim() >= 1 && images_.size(0) == dataset.size() && dataset.size() >= 1,
               "DataLoader: argument 'dataset': expected images [N, ...] and N labels with N >= 1, got images ",
               shape_str(images_.shape()), " and ", dataset.size(), " labels");
  ENGINE_CHECK(options.batch_size >= 1, "DataLoader: option 'batch_size': expected >= 1, got ", options.batch_size);
  ENGINE_CHECK(!options.drop_last || options.batch_size <= dataset.size(),
               "DataLoader: option 'drop_last': with batch_size ", options.batch_size, " > dataset size ",
               dataset.size(), " every epoch would be empty");
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch() {
  if (options_.shuffle) {
    order_ = randperm(dataset_size(), generator_);
  } else {
    order_.resize(static_cast<size_t>(dataset_size()));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
  ++epoch_;
}

Batch DataLoader::batch(int64_t b) const {
  ENGINE_CHECK(epoch_ > 0, "DataLoader::batch: no epoch started; call start_epoch() first");
  ENGINE_CHECK(b >= 0 && b < num_batches(), "DataLoader::batch: argument 'b': expected 0 <= b < ", num_batches(),
               ", got ", b);
  const int64_t first = b * options_.batch_size;
  const int64_t count = std::min(options_.batch_size, dataset_size() - first);

  // Gather: item i of the batch is row order[first + i] of the dataset.
  Shape shape = images_.shape();
  shape[0] = count;
  const int64_t item_numel = images_.numel() / images_.size(0);
  Batch batch;
  batch.images = Tensor::empty(shape);
  batch.labels.resize(static_cast<size_t>(count));
  batch.indices.resize(static_cast<size_t>(count));
  const float* source = images_.data<float>();
  float* destination = batch.images.data<float>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t item = order_[static_cast<size_t>(first + i)];
    std::memcpy(destination + i * item_numel, source + item * item_numel, sizeof(float) * static_cast<size_t>(item_numel));
    batch.labels[static_cast<size_t>(i)] = labels_[static_cast<size_t>(item)];
    batch.indices[static_cast<size_t>(i)] = item;
  }
  return batch;
}

}  // namespace engine::data
