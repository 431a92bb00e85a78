// CPU backend: OpenVINO runtime reading the ONNX export.
#include <openvino/openvino.hpp>

#include <sched.h>

#include "backend.h"

namespace aligned {
namespace {

// The CPUs this process may run on (its affinity mask: a scheduler's allotment), at least 1.
int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

class OpenVinoBackend : public Backend {
 public:
  void Load(const ModelSpec &spec) override {
    spec_ = spec;
    try {
      auto model = core_.read_model(spec.path);
      if (model->inputs().size() != 1) throw std::runtime_error("expected a model with one input");
      model->reshape(ov::PartialShape{spec.batch, 3, spec.height, spec.width});
      // The precision is always explicit: on CPUs with bfloat16 support OpenVINO would otherwise lower
      // float32 to bf16 by itself. fp32 and int8 keep float32 for every operation that is not
      // quantised; bf16 asks for bfloat16 (refused by the pipeline on CPUs without it).
      const bool bf16 = spec.precision == "bf16";
      ov::AnyMap config{{ov::hint::performance_mode.name(),
                         spec.hint == "throughput" ? ov::hint::PerformanceMode::THROUGHPUT : ov::hint::PerformanceMode::LATENCY},
                        {ov::hint::inference_precision.name(), bf16 ? ov::element::bf16 : ov::element::f32},
                        {ov::hint::execution_mode.name(),
                         spec.precision == "fp32" ? ov::hint::ExecutionMode::ACCURACY : ov::hint::ExecutionMode::PERFORMANCE}};
      if (spec.threads > 0) {
        config[ov::inference_num_threads.name()] = spec.threads;
        // OpenVINO pins its threads to the first cores of the machine: programs side by side (shards,
        // query and gallery under --cores) would all run on the same ones. Fewer threads than the
        // cores this process may use: leave the placing to the OS.
        if (spec.threads < UsableCores()) config[ov::hint::enable_cpu_pinning.name()] = false;
      }
      compiled_ = core_.compile_model(model, "CPU", config);
      if (spec.precision == "int8" && !HasInt8Kernels()) {
        throw std::runtime_error("--precision int8 but no operation of the compiled model runs in int8 (is it the quantised IR?)");
      }
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

  std::string Name() const override {
    const bool pinned = compiled_.get_property(ov::hint::enable_cpu_pinning);
    return std::string("openvino-cpu ") + ov::get_openvino_version().buildNumber + " " + spec_.precision + " " + spec_.hint +
           (pinned ? ", threads pinned to cores" : ", threads not pinned");
  }

 private:
  // Whether any operation of the compiled model runs in an 8-bit integer type (OpenVINO's runtime
  // graph names each node's runtime precision).
  bool HasInt8Kernels() const {
    for (const auto &op : compiled_.get_runtime_model()->get_ordered_ops()) {
      const auto &info = op->get_rt_info();
      const auto it = info.find("runtimePrecision");
      if (it != info.end()) {
        const auto precision = it->second.as<std::string>();
        if (precision == "I8" || precision == "U8" || precision == "i8" || precision == "u8") return true;
      }
    }
    return false;
  }

  ModelSpec spec_;
  ov::Core core_;
  ov::CompiledModel compiled_;
  ov::InferRequest request_;
  std::vector<size_t> sizes_;
};

}  // namespace

std::unique_ptr<Backend> CreateBackend() { return std::make_unique<OpenVinoBackend>(); }

}  // namespace aligned
