// Checkpoints: the two kinds of safetensors file a training app writes.
//
// 1. A model checkpoint is the plain state dict, nothing else:
//      "inc.0.0.weight" F32 [D, 1, 3, 3], ..., "unflat.1.num_batches_tracked" I64 []
//    exactly what PyTorch's model.state_dict() holds, so
//      model.load_state_dict(safetensors.torch.load_file("model_epoch_5.safetensors"), strict=True)
//    loads it into the PyTorch reference model, and a file saved from there
//    (safetensors.torch.save_file(model.state_dict(), path)) loads here.
//
// 2. A training checkpoint is everything needed to continue a run so that it
//    produces the same losses, bit for bit, as a run that was never stopped:
//      "model.<key>"       the model's state dict (parameters AND BatchNorm buffers)
//      "optimizer.<key>"   Adam's state (see layers/optim.h: state.<i>.step/exp_avg/exp_avg_sq)
//      "train.losses"      F32 [steps]: every step's loss so far
//    and, as safetensors metadata (strings), the scalars:
//      format              "engine-training-checkpoint-1"
//      epoch               epochs completed
//      batch               batches completed in the epoch after those (0 at an epoch boundary)
//      step                optimiser steps completed (= number of losses)
//      lr                  the optimiser's learning rate now (shortest round-trip decimal)
//      scheduler_epoch     the LR schedule's last_epoch (0 without a schedule)
//      train_seconds       training time spent so far, over all sessions
//      rng.<name>.seed     each named Generator: its seed ...
//      rng.<name>.offset   ... and offset (decimal u64)
//      setting.<name>      the run's settings, to refuse a resume with other ones
//    With the random streams restored (the data loader's as of the START of
//    the current epoch, so that the epoch's shuffle is drawn again, and the
//    noise generator's as of now), the model, Adam's moments and step counts,
//    and the BatchNorm running statistics, the next step is computed from
//    exactly the same numbers as it would have been.
//
// Both kinds are written atomically (core/safetensors.h): a crash mid-write
// leaves the previous file intact.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/safetensors.h"
#include "layers/module.h"

namespace engine::ckpt {

struct TrainingState {
  NamedTensors model;      // Module::state_dict()
  NamedTensors optimizer;  // Adam::state_dict()
  double lr = 0;
  int64_t scheduler_epoch = 0;
  int64_t epoch = 0;
  int64_t batch = 0;
  int64_t step = 0;
  double train_seconds = 0;
  std::map<std::string, Generator> generators;  // e.g. "loader", "noise"
  std::vector<float> losses;                     // step losses, losses.size() == step
  std::map<std::string, std::string> settings;   // e.g. "sigma" -> "0.5"
};

// The file name the apps use for the training checkpoint in a run folder.
constexpr const char* kTrainingCheckpointName = "checkpoint.safetensors";

// Writes / reads a training checkpoint (layout above). Reading checks the
// format tag, that every scalar is present and parses, and that the number
// of losses equals `step`; errors name the file and the entry.
void save_training_checkpoint(const std::string& path, const TrainingState& state);
TrainingState load_training_checkpoint(const std::string& path);

// Throws engine::Error when `current` differs from the checkpoint's settings
// `saved`, naming the first differing setting and both values (a resume with
// another sigma or batch size would not continue the same run).
void check_same_settings(const std::map<std::string, std::string>& saved,
                         const std::map<std::string, std::string>& current, const std::string& path);

// The model's state dict from either kind of file: a training checkpoint's
// "model.*" tensors (prefix removed), or a plain state dict as is.
NamedTensors load_model_state(const std::string& path);

// Checks that `state` fits `module` exactly (strict: same keys, shapes and
// dtypes) and throws otherwise, naming the FIRST problem in the module's key
// order and both shapes, e.g.
//   checkpoint 'ck.safetensors' does not fit this UNet: key 'inc.0.0.weight' has shape [32, 1, 3, 3]
//   in the checkpoint but [128, 1, 3, 3] in the model
// then how many other keys differ. A key the module lacks is reported after
// all of the module's own keys matched (e.g. "fc1_t.0.weight": a checkpoint
// of a time-conditioned UNet).
void check_state_fits(const Module& module, const NamedTensors& state, const std::string& path,
                      const std::string& model_description);

// Shortest decimal text that reads back as the same double, and back.
std::string double_text(double value);
double parse_double(const std::string& text, const std::string& what);

}  // namespace engine::ckpt
