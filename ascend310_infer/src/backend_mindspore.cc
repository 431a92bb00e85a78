// Ascend backend: MindSpore C++ inference API (Ascend 310/910) reading the MindIR export.
// Not runnable without Ascend hardware; CI compiles and links it against the MindSpore C++
// headers and library shipped in the mindspore-lite wheel.
#include <include/api/context.h>
#include <include/api/model.h>
#include <include/api/status.h>
#include <include/api/types.h>

#include "backend.h"

namespace aligned {
namespace {

constexpr const char *kPrecisionMode = "preferred_fp32";

class MindSporeBackend : public Backend {
 public:
  void Load(const ModelSpec &spec) override {
    spec_ = spec;
    if (spec.precision != "fp32") {
      throw std::runtime_error("the ascend backend runs the MindIR model in float32 (--precision " + spec.precision +
                               " is for the cpu backend's OpenVINO IR)");
    }
    auto context = std::make_shared<mindspore::Context>();
    auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
    ascend->SetDeviceID(static_cast<uint32_t>(spec.device_id));
    // The Ascend compiler's default is "enforce_fp16" (every operator in float16). The pipeline
    // compares these features with a float32 reference, so the precision is chosen explicitly:
    // "preferred_fp32" keeps float32 wherever the device has a float32 kernel (see
    // docs/architecture.md, precision). Outputs are asked for, and checked to be, float32.
    ascend->SetPrecisionMode(kPrecisionMode);
    ascend->SetOutputType(mindspore::DataType::kNumberTypeFloat32);
    context->MutableDeviceInfo().push_back(ascend);
    auto status = model_.Build(spec.path, mindspore::ModelType::kMindIR, context);
    if (status != mindspore::kSuccess) {
      throw std::runtime_error("MindSpore could not build " + spec.path + " on Ascend device " + std::to_string(spec.device_id) +
                               ": " + status.ToString());
    }
    auto inputs = model_.GetInputs();
    if (inputs.size() != 1) throw std::runtime_error("expected a model with one input");
    const auto shape = inputs[0].Shape();
    const std::vector<int64_t> want{spec.batch, 3, spec.height, spec.width};
    if (shape != want) {
      throw std::runtime_error("the MindIR input shape does not match --batch/--height/--width (export it with export.batch_size)");
    }
    sizes_.clear();
    for (auto &out : model_.GetOutputs()) sizes_.push_back(static_cast<size_t>(out.ElementNum()) / spec.batch);
  }

  std::vector<size_t> OutputSizes() const override { return sizes_; }

  std::vector<std::vector<float>> Run(const std::vector<float> &batch) override {
    auto inputs = model_.GetInputs();
    std::vector<mindspore::MSTensor> in{mindspore::MSTensor(inputs[0].Name(), mindspore::DataType::kNumberTypeFloat32, inputs[0].Shape(),
                                                            batch.data(), batch.size() * sizeof(float))};
    std::vector<mindspore::MSTensor> out;
    auto status = model_.Predict(in, &out);
    if (status != mindspore::kSuccess) throw std::runtime_error("MindSpore Predict failed: " + status.ToString());
    std::vector<std::vector<float>> result;
    for (auto &t : out) {
      if (t.DataType() != mindspore::DataType::kNumberTypeFloat32) {
        throw std::runtime_error("output " + t.Name() + " of the MindIR model is not float32 (data type " +
                                 std::to_string(static_cast<int>(t.DataType())) + "); export the model in float32");
      }
      auto data = t.Data();
      const float *p = static_cast<const float *>(data.get());
      result.emplace_back(p, p + t.ElementNum());
    }
    return result;
  }

  std::string Name() const override { return "mindspore-ascend"; }

 private:
  ModelSpec spec_;
  mindspore::Model model_;
  std::vector<size_t> sizes_;
};

}  // namespace

std::unique_ptr<Backend> CreateBackend() { return std::make_unique<MindSporeBackend>(); }

}  // namespace aligned
