#include "apps/common/checkpoint.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <type_traits>

namespace engine::ckpt {

namespace {

constexpr const char* kFormat = "engine-training-checkpoint-1";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";
constexpr const char* kLossesKey = "train.losses";

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

const std::string& metadata_entry(const std::map<std::string, std::string>& metadata, const std::string& key,
                                  const std::string& path) {
  const auto found = metadata.find(key);
  ENGINE_CHECK(found != metadata.end(), "training checkpoint '", path, "': metadata entry '", key,
               "' is missing (the file is not a complete training checkpoint)");
  return found->second;
}

// All of `text` as an Integer (int64_t or uint64_t); `what` names the entry in errors.
template <typename Integer>
Integer parse_integer(const std::string& text, const std::string& what) {
  Integer value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  ENGINE_CHECK(!text.empty() && error == std::errc() && end == text.data() + text.size(), what, ": expected ",
               std::is_signed_v<Integer> ? "an integer" : "an unsigned integer", ", got '", text, "'");
  return value;
}

}  // namespace

std::string double_text(double value) {
  char buffer[40];
  // Whole numbers print as integers ("10", not "1e+01").
  if (std::fabs(value) < 1e15 && value == std::trunc(value)) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
    return buffer;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

double parse_double(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  ENGINE_CHECK(!text.empty() && end == text.c_str() + text.size() && errno != ERANGE, what,
               ": expected a number, got '", text, "'");
  return value;
}

void save_training_checkpoint(const std::string& path, const TrainingState& state) {
  ENGINE_CHECK(static_cast<int64_t>(state.losses.size()) == state.step, "save_training_checkpoint: ",
               state.losses.size(), " losses for ", state.step, " steps");
  NamedTensors tensors;
  for (const auto& [key, tensor] : state.model) tensors.emplace_back(kModelPrefix + key, tensor);
  for (const auto& [key, tensor] : state.optimizer) tensors.emplace_back(kOptimizerPrefix + key, tensor);
  tensors.emplace_back(kLossesKey, Tensor::from_vector(state.losses, {static_cast<int64_t>(state.losses.size())}));

  std::map<std::string, std::string> metadata{
      {"format", kFormat},
      {"epoch", std::to_string(state.epoch)},
      {"batch", std::to_string(state.batch)},
      {"step", std::to_string(state.step)},
      {"lr", double_text(state.lr)},
      {"scheduler_epoch", std::to_string(state.scheduler_epoch)},
      {"train_seconds", double_text(state.train_seconds)},
  };
  for (const auto& [name, generator] : state.generators) {
    metadata["rng." + name + ".seed"] = std::to_string(generator.seed());
    metadata["rng." + name + ".offset"] = std::to_string(generator.offset());
  }
  for (const auto& [name, value] : state.settings) metadata["setting." + name] = value;
  save_safetensors(path, tensors, metadata);
}

TrainingState load_training_checkpoint(const std::string& path) {
  SafetensorsContents contents = load_safetensors(path);
  const auto& metadata = contents.metadata;
  const auto format = metadata.find("format");
  ENGINE_CHECK(format != metadata.end() && format->second == kFormat, "training checkpoint '", path,
               "': expected metadata format '", kFormat, "', got ",
               format == metadata.end() ? std::string("none (a model-only checkpoint cannot be resumed)")
                                        : "'" + format->second + "'");
  const std::string where = "training checkpoint '" + path + "': metadata entry ";
  auto integer = [&](const char* key) {
    return parse_integer<int64_t>(metadata_entry(metadata, key, path), where + "'" + key + "'");
  };

  TrainingState state;
  state.epoch = integer("epoch");
  state.batch = integer("batch");
  state.step = integer("step");
  state.scheduler_epoch = integer("scheduler_epoch");
  state.lr = parse_double(metadata_entry(metadata, "lr", path), where + "'lr'");
  state.train_seconds = parse_double(metadata_entry(metadata, "train_seconds", path), where + "'train_seconds'");
  for (const auto& [key, value] : metadata) {
    if (starts_with(key, "setting.")) state.settings[key.substr(8)] = value;
    if (starts_with(key, "rng.") && key.size() > 11 && key.compare(key.size() - 5, 5, ".seed") == 0) {
      const std::string name = key.substr(4, key.size() - 9);
      const uint64_t seed = parse_integer<uint64_t>(value, where + "'" + key + "'");
      const uint64_t offset = parse_integer<uint64_t>(metadata_entry(metadata, "rng." + name + ".offset", path),
                                                      where + "'rng." + name + ".offset'");
      Generator generator(seed);
      generator.set_offset(offset);
      state.generators.insert_or_assign(name, generator);
    }
  }

  bool have_losses = false;
  for (auto& [key, tensor] : contents.tensors) {
    if (starts_with(key, kModelPrefix)) {
      state.model.emplace_back(key.substr(6), tensor);
    } else if (starts_with(key, kOptimizerPrefix)) {
      state.optimizer.emplace_back(key.substr(10), tensor);
    } else if (key == kLossesKey) {
      ENGINE_CHECK(tensor.dtype() == DType::F32 && tensor.dim() == 1, "training checkpoint '", path, "': tensor '",
                   kLossesKey, "' must be F32 [steps], got ", dtype_name(tensor.dtype()), " ", shape_str(tensor.shape()));
      state.losses = tensor.to_vector();
      have_losses = true;
    } else {
      throw Error("training checkpoint '" + path + "': unexpected tensor '" + key +
                  "' (expected model.*, optimizer.* or train.losses)");
    }
  }
  ENGINE_CHECK(have_losses, "training checkpoint '", path, "': tensor '", kLossesKey, "' is missing");
  ENGINE_CHECK(static_cast<int64_t>(state.losses.size()) == state.step, "training checkpoint '", path, "': ",
               state.losses.size(), " losses recorded but step is ", state.step);
  ENGINE_CHECK(!state.model.empty(), "training checkpoint '", path, "': no model.* tensors");
  return state;
}

void check_same_settings(const std::map<std::string, std::string>& saved,
                         const std::map<std::string, std::string>& current, const std::string& path) {
  for (const auto& [name, value] : current) {
    const auto found = saved.find(name);
    const std::string saved_value = found == saved.end() ? "(not recorded)" : found->second;
    ENGINE_CHECK(found != saved.end() && found->second == value, "--resume: the checkpoint '", path,
                 "' was trained with ", name, " = ", saved_value, ", this command asks for ", name, " = ", value,
                 "; resume with the same settings, or start a new run in another --out folder");
  }
  for (const auto& [name, value] : saved)
    ENGINE_CHECK(current.count(name), "--resume: the checkpoint '", path, "' records setting ", name, " = ", value,
                 " that this program does not know");
}

NamedTensors load_model_state(const std::string& path) {
  SafetensorsContents contents = load_safetensors(path);
  const auto format = contents.metadata.find("format");
  if (format == contents.metadata.end() || format->second != kFormat) return std::move(contents.tensors);
  NamedTensors model;
  for (auto& [key, tensor] : contents.tensors)
    if (starts_with(key, kModelPrefix)) model.emplace_back(key.substr(6), tensor);
  return model;
}

void check_state_fits(const Module& module, const NamedTensors& state, const std::string& path,
                      const std::string& model_description) {
  std::map<std::string, const Tensor*> incoming;
  for (const auto& [key, tensor] : state) incoming.emplace(key, &tensor);
  const NamedTensors own = module.state_dict();
  std::set<std::string> own_keys;
  std::vector<std::string> problems;
  for (const auto& [key, tensor] : own) {
    own_keys.insert(key);
    const auto found = incoming.find(key);
    if (found == incoming.end()) {
      problems.push_back("key '" + key + "' (shape " + shape_str(tensor.shape()) +
                         " in the model) is missing from the checkpoint");
    } else if (found->second->shape() != tensor.shape()) {
      problems.push_back("key '" + key + "' has shape " + shape_str(found->second->shape()) +
                         " in the checkpoint but " + shape_str(tensor.shape()) + " in the model");
    } else if (found->second->dtype() != tensor.dtype()) {
      problems.push_back("key '" + key + "' is " + dtype_name(found->second->dtype()) + " in the checkpoint but " +
                         dtype_name(tensor.dtype()) + " in the model");
    }
  }
  for (const auto& [key, tensor] : state)
    if (!own_keys.count(key))
      problems.push_back("key '" + key + "' (shape " + shape_str(tensor.shape()) +
                         ") is in the checkpoint but not in the model");
  if (problems.empty()) return;
  std::string message = "checkpoint '" + path + "' does not fit " + model_description + ": " + problems.front();
  if (problems.size() > 1) message += " (and " + std::to_string(problems.size() - 1) + " more mismatching key(s))";
  throw Error(message);
}

}  // namespace engine::ckpt
