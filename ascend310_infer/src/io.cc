#include "io.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace aligned {

std::vector<std::string> ListBinFiles(const std::string &dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error("input folder not found: " + dir);
  std::vector<std::string> files;
  for (const auto &e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".bin") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<float> ReadFloats(const std::string &path, size_t count) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto bytes = static_cast<size_t>(in.tellg());
  if (bytes != count * sizeof(float)) {
    throw std::runtime_error(path + ": " + std::to_string(bytes) + " bytes, expected " + std::to_string(count * sizeof(float)) +
                             " (float32 [3, height, width]); was it made for another input size?");
  }
  std::vector<float> data(count);
  in.seekg(0);
  in.read(reinterpret_cast<char *>(data.data()), static_cast<std::streamsize>(bytes));
  if (!in) throw std::runtime_error("short read from " + path);
  return data;
}

void WriteFloats(const std::string &path, const float *data, size_t count) {
  const std::string tmp = path + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(count * sizeof(float)));
    if (!out) throw std::runtime_error("write failed: " + tmp);
  }
  fs::rename(tmp, path);
}

}  // namespace aligned
