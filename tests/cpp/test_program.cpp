// Program over the real ExecuTorch runtime: loading errors, constant methods, and a
// run of tests/data/tiny_linear.pte (made by tests/data/make_tiny_program.py:
// y = x @ W^T + b with W[i][j] = (i - j) / 8, b[i] = i / 4, x of shape [2, 4]; XNNPACK-delegated).
#include <cstdio>
#include <fstream>
#include <string>

#include "check.h"
#include "voxtral/voxtral.h"

using voxtral::ErrorCode;
using voxtral::FloatTensor;
using voxtral::Program;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_program tiny_linear.pte\n");
    return 2;
  }
  const std::string fixture = argv[1];

  // Missing file: NotFound naming the path.
  auto missing = Program::load("/nonexistent/dir/model.pte");
  CHECK(!missing.ok());
  CHECK(missing.status().code() == ErrorCode::kNotFound);
  CHECK(missing.status().message().find("/nonexistent/dir/model.pte") != std::string::npos);

  // Garbage and truncated files: InvalidProgram, never a crash.
  const std::string garbage = "test_program_garbage.pte";
  { std::ofstream(garbage, std::ios::binary) << std::string(4096, '\x5a'); }
  auto bad = Program::load(garbage);
  CHECK(!bad.ok());
  CHECK(bad.status().code() == ErrorCode::kInvalidProgram);
  std::remove(garbage.c_str());

  {
    std::ifstream in(fixture, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string truncated = "test_program_truncated.pte";
    { std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2); }
    auto t = Program::load(truncated);
    CHECK(!t.ok());
    std::remove(truncated.c_str());
  }

  auto loaded = Program::load(fixture);
  CHECK(loaded.ok());
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    TEST_MAIN_RETURN();
  }
  Program& program = **loaded;
  CHECK(program.has_method("forward"));
  CHECK(program.has_method("format_version"));
  CHECK(!program.has_method("nope"));

  auto version = program.constant_int("format_version");
  CHECK(version.ok() && *version == 1);
  auto scale = program.constant_double("scale");
  CHECK(scale.ok() && *scale == 0.25);
  CHECK(program.constant_int("nope").status().code() == ErrorCode::kNotFound);
  CHECK(program.constant_int("scale").status().code() == ErrorCode::kInvalidProgram);  // a float

  FloatTensor x{{2, 4}, {1, 2, 3, 4, -1, 0.5f, 0, 2}};
  auto out = program.run("forward", {x});
  CHECK(out.ok());
  if (out.ok()) {
    CHECK_EQ(out->size(), size_t{1});
    const FloatTensor& y = (*out)[0];
    CHECK(y.shape == (std::vector<int64_t>{2, 4}));
    for (int r = 0; r < 2; ++r) {
      for (int i = 0; i < 4; ++i) {
        double expect = i / 4.0;
        for (int j = 0; j < 4; ++j) expect += x.data[r * 4 + j] * (i - j) / 8.0;
        CHECK_NEAR(y.data[r * 4 + i], expect, 1e-5);
      }
    }
  } else {
    std::fprintf(stderr, "%s\n", out.status().to_string().c_str());
  }

  // Wrong input count / shape / data size: errors, never a crash.
  CHECK(!program.run("forward", {}).ok());
  CHECK(!program.run("forward", {FloatTensor{{2, 5}, std::vector<float>(10)}}).ok());
  CHECK(program.run("forward", {FloatTensor{{2, 4}, std::vector<float>(3)}}).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(program.run("nope", {x}).status().code() == ErrorCode::kNotFound);
  TEST_MAIN_RETURN();
}
