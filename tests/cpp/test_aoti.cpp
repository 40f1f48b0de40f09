// Program over the AOTI backend, on a toy AOTInductor package made by
// tests/python/test_aoti_backend.py (which runs this with the package's path):
//   step(x [1, 8] f32, pos [1] i64) + state cache [4, 8] f32:
//       cache[pos] = x @ W; returns (cache.sum(0) [1, 8] f32, argmax(x @ W) [1] i64)
//   read(scale [1] f32) + state cache: returns cache * scale [4, 8]
//   mix(x [1, 8] bf16) + state count [1] i64: count += 1; returns (x * 2 [1, 8] bf16,
//       count [1] i64, x as float16 [1, 8], which the backend hands out as float32)
//   constants format_version = 1, alpha = 1.5
// Checks what holds whatever W is; then prints the outputs of a fixed scenario as
// "OUT <tag> <output> <dtype> <shape> <values...>" lines, which the Python test compares
// with torch's own loader of the package.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/aoti/zip_directory.h"
#include "check.h"
#include "voxtral/bf16.h"
#include "voxtral/voxtral.h"

using voxtral::DType;
using voxtral::ErrorCode;
using voxtral::Program;
using voxtral::TensorView;

namespace {

// Exactly representable inputs, so C++ and Python feed the same bits.
std::vector<float> x_of(int k) {
  std::vector<float> x(8);
  for (int j = 0; j < 8; ++j) x[j] = static_cast<float>(((k * 8 + j) % 13) - 6) / 4.0f;
  return x;
}

std::unique_ptr<Program> load(const std::string& path) {
  auto p = Program::load(path);
  if (!p.ok()) {
    std::fprintf(stderr, "load failed: %s\n", p.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*p);
}

std::vector<TensorView> step(Program& p, const std::vector<float>& x, const int64_t& pos) {
  auto out = p.execute("step", {TensorView::f32(x.data(), {1, 8}), TensorView::i64(&pos, {1})});
  if (!out.ok()) {
    std::fprintf(stderr, "step failed: %s\n", out.status().to_string().c_str());
    std::exit(1);
  }
  return *out;
}

std::vector<float> read_cache(Program& p, float scale) {
  auto out = p.run("read", {{{1}, {scale}}});
  if (!out.ok() || out->size() != 1) {
    std::fprintf(stderr, "read failed: %s\n", out.status().to_string().c_str());
    std::exit(1);
  }
  return (*out)[0].data;
}

void print(const std::string& tag, const std::vector<TensorView>& outs) {
  for (size_t i = 0; i < outs.size(); ++i) {
    const TensorView& t = outs[i];
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d) shape += (d ? "," : "") + std::to_string(t.shape[d]);
    std::printf("OUT %s %zu %s %s", tag.c_str(), i, voxtral::dtype_name(t.dtype), shape.c_str());
    for (int64_t j = 0; j < t.numel(); ++j) {
      if (t.dtype == DType::kInt64) {
        std::printf(" %lld", static_cast<long long>(t.i64()[j]));
      } else if (t.dtype == DType::kBFloat16) {
        std::printf(" %.9g", voxtral::bf16_to_float(t.bf16()[j]));
      } else {
        std::printf(" %.9g", t.f32()[j]);
      }
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("VOXTRAL_TEST_AOTI_PACKAGE");
  if (argc < 2 && env == nullptr) {
    std::fprintf(stderr, "test_aoti: no package (tests/python/test_aoti_backend.py makes one); skipped\n");
    return 77;  // ctest's SKIP_RETURN_CODE
  }
  const std::string path = argc >= 2 ? argv[1] : env;

  // The zip directory reader on a zip64 archive (more entries than the classic record holds)
  // that test_aoti_backend.py makes: names in order, none lost.
  if (const char* zip64 = std::getenv("VOXTRAL_TEST_ZIP64"); zip64 != nullptr) {
    auto names = voxtral::backend::zip_entry_names(zip64);
    CHECK(names.ok() && names->size() == 70000 && names->front() == "top/e0" && names->back() == "top/e69999");
  }
  auto not_zip = voxtral::backend::zip_entry_names(path + ".missing");
  CHECK(!not_zip.ok() && not_zip.status().code() == ErrorCode::kNotFound);

  auto built = voxtral::backends();
  CHECK(built.size() == 2 && built[0] == "xnnpack" && built[1] == "aoti");

  // Loading errors: NotFound names the path; a zip that is no package is InvalidProgram.
  auto missing = Program::load("/nonexistent/dir/model.pt2");
  CHECK(!missing.ok() && missing.status().code() == ErrorCode::kNotFound);
  const std::string garbage = "test_aoti_garbage.pt2";
  { std::ofstream(garbage, std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(4096, '\x5a'); }
  auto bad = Program::load(garbage);
  CHECK(!bad.ok() && bad.status().code() == ErrorCode::kInvalidProgram);
  std::remove(garbage.c_str());

  // Methods and constants, as ExecuTorch programs list them (constants are methods).
  auto c = load(path);
  CHECK((c->method_names() == std::vector<std::string>{"alpha", "format_version", "mix", "read", "step"}));
  CHECK(c->has_method("step") && c->has_method("alpha") && !c->has_method("nope"));
  auto version = c->constant_int("format_version");
  CHECK(version.ok() && *version == 1);
  auto version_d = c->constant_double("format_version");
  CHECK(version_d.ok() && *version_d == 1.0);
  auto alpha = c->constant_double("alpha");
  CHECK(alpha.ok() && *alpha == 1.5);
  CHECK(c->constant_int("alpha").status().code() == ErrorCode::kInvalidProgram);
  CHECK(c->constant_int("step").status().code() == ErrorCode::kInvalidProgram);
  CHECK(c->constant_int("nope").status().code() == ErrorCode::kNotFound);
  CHECK(c->constant_double("nope").status().code() == ErrorCode::kNotFound);

  // Planned memory: the method's state (cache 4 x 8 float32, count 1 int64).
  auto step_bytes = c->planned_memory_bytes("step");
  CHECK(step_bytes.ok() && *step_bytes == 4 * 8 * 4);
  auto mix_bytes = c->planned_memory_bytes("mix");
  CHECK(mix_bytes.ok() && *mix_bytes == 8);
  auto alpha_bytes = c->planned_memory_bytes("alpha");
  CHECK(alpha_bytes.ok() && *alpha_bytes == 0);
  CHECK(c->planned_memory_bytes("nope").status().code() == ErrorCode::kNotFound);

  // Bad calls are errors, never crashes.
  const std::vector<float> x0 = x_of(0);
  const float pos_f = 0.0f;
  const int64_t pos0 = 0;
  auto few = c->execute("step", {TensorView::f32(x0.data(), {1, 8})});
  CHECK(!few.ok() && few.status().code() == ErrorCode::kInvalidArgument);
  CHECK(few.status().message().find("takes 2 inputs, got 1") != std::string::npos);
  auto wrong_dtype = c->execute("step", {TensorView::f32(x0.data(), {1, 8}), TensorView::f32(&pos_f, {1})});
  CHECK(!wrong_dtype.ok() && wrong_dtype.status().code() == ErrorCode::kInvalidArgument);
  CHECK(wrong_dtype.status().message().find("int64") != std::string::npos);
  auto wrong_shape = c->execute("step", {TensorView::f32(x0.data(), {2, 4}), TensorView::i64(&pos0, {1})});
  CHECK(!wrong_shape.ok() && wrong_shape.status().code() == ErrorCode::kInvalidArgument);
  auto no_data = c->execute("step", {TensorView::f32(nullptr, {1, 8}), TensorView::i64(&pos0, {1})});
  CHECK(!no_data.ok() && no_data.status().code() == ErrorCode::kInvalidArgument);
  CHECK(c->execute("nope", {}).status().code() == ErrorCode::kNotFound);
  CHECK(c->execute("alpha", {}).status().code() == ErrorCode::kInvalidArgument);
  CHECK(c->run("step", {{{1, 8}, x0}, {{1}, {0.0f}}}).status().code() == ErrorCode::kInvalidArgument);
  {
    // A failed call leaves the Program usable, with its state untouched.
    auto zeros = read_cache(*c, 1.0f);
    bool all_zero = true;
    for (float v : zeros) all_zero = all_zero && v == 0.0f;
    CHECK(all_zero);
  }

  // State persists across calls and is shared by the methods that name it: step writes
  // row pos of the cache and returns the sum of its rows, read returns the rows.
  {
    const std::vector<float> x1 = x_of(1);
    const int64_t pos1 = 1;
    auto first = step(*c, x0, pos0);
    std::vector<float> sum0(first[0].f32(), first[0].f32() + 8);
    CHECK(first[1].dtype == DType::kInt64 && first[1].numel() == 1);
    CHECK(first[1].i64()[0] >= 0 && first[1].i64()[0] < 8);
    auto second = step(*c, x1, pos1);
    std::vector<float> sum01(second[0].f32(), second[0].f32() + 8);  // views end at the next call
    auto rows = read_cache(*c, 1.0f);
    CHECK(rows.size() == 32);
    for (int j = 0; j < 8; ++j) {
      CHECK_NEAR(rows[j], sum0[j], 1e-6);                                // row 0: the first step's x @ W
      CHECK_NEAR(rows[j] + rows[8 + j], sum01[j], 1e-5);              // the sum of rows 0 and 1
      CHECK(rows[16 + j] == 0.0f && rows[24 + j] == 0.0f);                // rows 2, 3 untouched
    }
    auto doubled = read_cache(*c, 2.0f);
    for (int j = 0; j < 32; ++j) CHECK_NEAR(doubled[j], 2 * rows[j], 1e-6);

    // Another Program of the same package has its own state (zeros, as a new stream).
    auto d = load(path);
    auto fresh = read_cache(*d, 1.0f);
    bool all_zero = true;
    for (float v : fresh) all_zero = all_zero && v == 0.0f;
    CHECK(all_zero);
    // ... and writing it leaves the first one's alone.
    step(*d, x_of(7), pos0);
    auto again = read_cache(*c, 1.0f);
    CHECK(again == rows);
  }

  // bf16 in and out, an int64 state of its own, float16 handed out as float32.
  {
    std::vector<uint16_t> xb(8);
    for (int j = 0; j < 8; ++j) xb[j] = voxtral::float_to_bf16(x0[j]);
    for (int64_t call = 1; call <= 2; ++call) {
      auto out = c->execute("mix", {TensorView::bf16(xb.data(), {1, 8})});
      CHECK(out.ok());
      if (!out.ok()) break;
      CHECK(out->size() == 3);
      CHECK((*out)[0].dtype == DType::kBFloat16 && (*out)[1].dtype == DType::kInt64 &&
            (*out)[2].dtype == DType::kFloat32);
      CHECK((*out)[1].i64()[0] == call);
      for (int j = 0; j < 8; ++j) {
        CHECK(voxtral::bf16_to_float((*out)[0].bf16()[j]) == 2 * voxtral::bf16_to_float(xb[j]));
        CHECK((*out)[2].f32()[j] == voxtral::bf16_to_float(xb[j]));
      }
    }
    auto wrong = c->execute("mix", {TensorView::f32(x0.data(), {1, 8})});
    CHECK(!wrong.ok() && wrong.status().code() == ErrorCode::kInvalidArgument);
  }

  // Sessions on several threads share the loaded models: each thread's Program ends with
  // exactly the state a replay of its calls on one thread gives.
  {
    constexpr int kThreads = 4, kCalls = 40;
    std::vector<std::unique_ptr<Program>> programs;
    for (int t = 0; t < kThreads; ++t) programs.push_back(load(path));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kCalls; ++k) {
          const int64_t pos = (k + t) % 4;
          step(*programs[t], x_of(k * kThreads + t), pos);
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
      auto replay = load(path);
      for (int k = 0; k < kCalls; ++k) {
        const int64_t pos = (k + t) % 4;
        step(*replay, x_of(k * kThreads + t), pos);
      }
      CHECK(read_cache(*programs[t], 1.0f) == read_cache(*replay, 1.0f));
    }
  }

  // The scenario the Python test replays through torch's loader.
  {
    auto a = load(path);
    auto b = load(path);
    for (int k = 0; k < 6; ++k) {
      const std::vector<float> x = x_of(k);
      const int64_t pos = k % 4;
      print("A.step." + std::to_string(k), step(*a, x, pos));
    }
    const float two = 2.0f;
    auto read_a = a->execute("read", {TensorView::f32(&two, {1})});
    CHECK(read_a.ok());
    if (read_a.ok()) print("A.read", *read_a);
    const std::vector<float> x10 = x_of(10);
    const int64_t pos2 = 2;
    print("B.step", step(*b, x10, pos2));
    const float one = 1.0f;
    auto read_b = b->execute("read", {TensorView::f32(&one, {1})});
    CHECK(read_b.ok());
    if (read_b.ok()) print("B.read", *read_b);
    std::vector<uint16_t> xb(8);
    const std::vector<float> x3 = x_of(3);
    for (int j = 0; j < 8; ++j) xb[j] = voxtral::float_to_bf16(x3[j]);
    for (int call = 0; call < 2; ++call) {
      auto mixed = a->execute("mix", {TensorView::bf16(xb.data(), {1, 8})});
      CHECK(mixed.ok());
      if (mixed.ok()) print("A.mix." + std::to_string(call), *mixed);
    }
  }
  TEST_MAIN_RETURN();
}
