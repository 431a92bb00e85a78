// CPU backend: OpenVINO runtime reading the ONNX export.
#include <openvino/openvino.hpp>

#include "backend.h"

namespace aligned {
namespace {

class OpenVinoBackend : public Backend {
 public:
  void Load(const ModelSpec &spec) override {
    spec_ = spec;
    try {
      auto model = core_.read_model(spec.path);
      if (model->inputs().size() != 1) throw std::runtime_error("expected a model with one input");
      model->reshape(ov::PartialShape{spec.batch, 3, spec.height, spec.width});
      // float32 throughout: on CPUs with bfloat16 support OpenVINO would otherwise lower the precision
      ov::AnyMap config{{ov::hint::performance_mode.name(), ov::hint::PerformanceMode::LATENCY},
                        {ov::hint::inference_precision.name(), ov::element::f32},
                        {ov::hint::execution_mode.name(), ov::hint::ExecutionMode::ACCURACY}};
      if (spec.threads > 0) config[ov::inference_num_threads.name()] = spec.threads;
      compiled_ = core_.compile_model(model, "CPU", config);
      request_ = compiled_.create_infer_request();
      sizes_.clear();
      for (const auto &out : compiled_.outputs()) {
        const auto shape = out.get_shape();
        if (shape.empty() || static_cast<int>(shape[0]) != spec.batch) throw std::runtime_error("output without the batch dimension");
        sizes_.push_back(ov::shape_size(shape) / spec.batch);
      }
    } catch (const ov::Exception &e) {
      throw std::runtime_error("OpenVINO could not load " + spec.path + ": " + e.what());
    }
  }

  std::vector<size_t> OutputSizes() const override { return sizes_; }

  std::vector<std::vector<float>> Run(const std::vector<float> &batch) override {
    ov::Tensor input(ov::element::f32, ov::Shape{static_cast<size_t>(spec_.batch), 3, static_cast<size_t>(spec_.height),
                                                 static_cast<size_t>(spec_.width)},
                     const_cast<float *>(batch.data()));
    request_.set_input_tensor(input);
    request_.infer();
    std::vector<std::vector<float>> outs;
    for (size_t k = 0; k < sizes_.size(); ++k) {
      const auto t = request_.get_output_tensor(k);
      const float *p = t.data<const float>();
      outs.emplace_back(p, p + t.get_size());
    }
    return outs;
  }

  std::string Name() const override { return std::string("openvino-cpu ") + ov::get_openvino_version().buildNumber; }

 private:
  ModelSpec spec_;
  ov::Core core_;
  ov::CompiledModel compiled_;
  ov::InferRequest request_;
  std::vector<size_t> sizes_;
};

}  // namespace

std::unique_ptr<Backend> CreateBackend() { return std::make_unique<OpenVinoBackend>(); }

}  // namespace aligned
