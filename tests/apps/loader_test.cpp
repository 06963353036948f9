// DataLoader: every item exactly once per epoch, the last partial batch kept,
// a new order every epoch, the same orders for the same seed, batches that
// hold the right images and labels; one-hot encoding.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "apps/common/loader.h"
#include "tests/apps/app_test_util.h"

namespace engine::data {
namespace {

// n items of shape [1, 2, 3]; every value of item i is i, its label i % 10.
Dataset numbered_dataset(int64_t n) {
  std::vector<float> values(static_cast<size_t>(n * 6));
  for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(k / 6);
  Dataset data;
  data.images = Tensor::from_vector(values, {n, 1, 2, 3});
  for (int64_t i = 0; i < n; ++i) data.labels.push_back(i % 10);
  return data;
}

// All batches of one epoch, in order.
std::vector<Batch> run_epoch(DataLoader& loader) {
  loader.start_epoch();
  std::vector<Batch> batches;
  for (int64_t b = 0; b < loader.num_batches(); ++b) batches.push_back(loader.batch(b));
  return batches;
}

std::vector<int64_t> epoch_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const Batch& batch : batches) all.insert(all.end(), batch.indices.begin(), batch.indices.end());
  return all;
}

using app_test::error_of;

TEST(DataLoader, EveryItemOncePerEpochAndLastPartialBatchKept) {
  const Dataset data = numbered_dataset(10);
  DataLoader loader(data, {.batch_size = 4}, Generator(1));
  EXPECT_EQ(loader.num_batches(), 3);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<Batch> batches = run_epoch(loader);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[0].size(), 4);
    EXPECT_EQ(batches[1].size(), 4);
    EXPECT_EQ(batches[2].size(), 2) << "the last partial batch is kept";
    EXPECT_EQ(batches[2].images.shape(), (Shape{2, 1, 2, 3}));
    std::vector<int64_t> seen = epoch_indices(batches);
    EXPECT_EQ(seen, loader.order());
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(10);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
    // Each batch row holds the item it names, with its label.
    for (const Batch& batch : batches) {
      const std::vector<float> values = batch.images.to_vector();
      for (int64_t i = 0; i < batch.size(); ++i) {
        const int64_t item = batch.indices[static_cast<size_t>(i)];
        EXPECT_EQ(batch.labels[static_cast<size_t>(i)], item % 10);
        for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(values[static_cast<size_t>(i * 6 + k)], static_cast<float>(item));
      }
    }
  }
  EXPECT_EQ(loader.epoch(), 3);
}

TEST(DataLoader, DropLastDropsThePartialBatch) {
  DataLoader loader(numbered_dataset(10), {.batch_size = 4, .drop_last = true}, Generator(1));
  EXPECT_EQ(loader.num_batches(), 2);
  const std::vector<Batch> batches = run_epoch(loader);
  EXPECT_EQ(epoch_indices(batches).size(), 8u);
  DataLoader exact(numbered_dataset(12), {.batch_size = 4, .drop_last = true}, Generator(1));
  EXPECT_EQ(exact.num_batches(), 3);
}

TEST(DataLoader, NewOrderEveryEpochSameOrdersForSameSeed) {
  const Dataset data = numbered_dataset(50);
  DataLoader a(data, {.batch_size = 8}, Generator(7));
  DataLoader b(data, {.batch_size = 8}, Generator(7));
  DataLoader c(data, {.batch_size = 8}, Generator(8));
  std::vector<int64_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  std::vector<std::vector<int64_t>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<int64_t> order_a = epoch_indices(run_epoch(a));
    const std::vector<int64_t> order_b = epoch_indices(run_epoch(b));
    const std::vector<int64_t> order_c = epoch_indices(run_epoch(c));
    EXPECT_EQ(order_a, order_b) << "same seed, epoch " << epoch;
    EXPECT_NE(order_a, order_c) << "different seed, epoch " << epoch;
    EXPECT_NE(order_a, identity) << "shuffled, epoch " << epoch;
    for (const auto& earlier : orders) EXPECT_NE(order_a, earlier) << "epoch " << epoch << " repeats an earlier order";
    orders.push_back(order_a);
  }
  // The contract with core/rng.h: epoch k's order is the k-th randperm of the
  // loader's generator.
  Generator reference(7);
  for (const auto& order : orders) EXPECT_EQ(order, randperm(50, reference));
}

TEST(DataLoader, ResumesFromTheGeneratorOffset) {
  const Dataset data = numbered_dataset(30);
  DataLoader first(data, {.batch_size = 5}, Generator(3));
  run_epoch(first);
  const uint64_t offset = first.generator().offset();
  const std::vector<int64_t> second_epoch = epoch_indices(run_epoch(first));
  Generator restored(3);
  restored.set_offset(offset);
  DataLoader resumed(data, {.batch_size = 5}, restored);
  EXPECT_EQ(epoch_indices(run_epoch(resumed)), second_epoch);
}

TEST(DataLoader, WithoutShuffleServesItemsInOrder) {
  DataLoader loader(numbered_dataset(7), {.batch_size = 3, .shuffle = false}, Generator(1));
  for (int epoch = 0; epoch < 2; ++epoch) {
    const std::vector<Batch> batches = run_epoch(loader);
    EXPECT_EQ(epoch_indices(batches), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(batches[2].labels, (std::vector<int64_t>{6}));
  }
}

TEST(DataLoader, OneHot) {
  const Tensor encoded = one_hot({3, 0, 9}, 10);
  ASSERT_EQ(encoded.shape(), (Shape{3, 10}));
  const std::vector<float> values = encoded.to_vector();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 10; ++k) {
      const int64_t label = std::vector<int64_t>{3, 0, 9}[static_cast<size_t>(i)];
      EXPECT_EQ(values[static_cast<size_t>(i * 10 + k)], k == label ? 1.0f : 0.0f) << i << " " << k;
    }
  DataLoader loader(numbered_dataset(4), {.batch_size = 4, .shuffle = false}, Generator(1));
  loader.start_epoch();
  const Tensor batch_one_hot = loader.batch(0).one_hot(4);
  EXPECT_EQ(batch_one_hot.to_vector(), (std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
}

TEST(DataLoader, RejectsBadArguments) {
  std::string message = error_of([] { one_hot({1, 10}, 10); });
  EXPECT_NE(message.find("expected values in [0, 10), got 10 at index 1"), std::string::npos) << message;

  message = error_of([] { DataLoader(numbered_dataset(4), {.batch_size = 0}, Generator(1)); });
  EXPECT_NE(message.find("'batch_size': expected >= 1, got 0"), std::string::npos) << message;

  Dataset mismatched = numbered_dataset(4);
  mismatched.labels.pop_back();
  message = error_of([&] { DataLoader(mismatched, {}, Generator(1)); });
  EXPECT_NE(message.find("got images [4, 1, 2, 3] and 3 labels"), std::string::npos) << message;

  DataLoader loader(numbered_dataset(4), {.batch_size = 3}, Generator(1));
  message = error_of([&] { loader.batch(0); });
  EXPECT_NE(message.find("call start_epoch() first"), std::string::npos) << message;
  loader.start_epoch();
  message = error_of([&] { loader.batch(2); });
  EXPECT_NE(message.find("expected 0 <= b < 2, got 2"), std::string::npos) << message;
}

}  // namespace
}  // namespace engine::data
