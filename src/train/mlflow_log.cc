#include "train/mlflow_log.h"

#include <chrono>
#include <cctype>
#include <cmath>

#include <fmt/core.h>

#include "io/file.h"
#include "io/json_file.h"
#include "storage/http.h"
#include "util/error.h"

namespace segscale::train {
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace {

constexpr std::size_t kMaxQueued = 100000;
constexpr std::size_t kBatch = 1000;         // MLflow's log-batch limit for metrics
constexpr std::size_t kParamBatch = 100;     // and for params
constexpr std::size_t kMaxParamValue = 6000;  // MLflow 2's longest parameter value

// The server answered, and said no (a 4xx other than 429): retrying the same request cannot help.
struct Rejected : Error {
  using Error::Error;
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t v = 0;
  int bits = 0;
  for (unsigned char c : in) {
    v = (v << 8) | c;
    bits += 8;
    while (bits >= 6) out.push_back(t[(v >> (bits -= 6)) & 63]);
  }
  if (bits) out.push_back(t[(v << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

// Percent-encoding (RFC 3986 unreserved kept; '/' kept when asked).
std::string encode(const std::string& in, bool keep_slash) {
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) out.push_back(static_cast<char>(c));
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

storage::HttpResponse send(const storage::HttpRequest& req, const std::string& where) {
#if SEGSCALE_WITH_S3
  return storage::http_request(req, where);
#else
  throw Error(where + ": this segscale was built without its HTTP client (libcurl)");
#endif
}

}  // namespace

std::optional<MlflowSettings> mlflow_settings(const std::string& uri, const std::string& experiment, const std::string& run_name,
                                              const std::filesystem::path& run_dir,
                                              const std::function<std::optional<std::string>(const char*)>& env) {
  MlflowSettings s;
  s.uri = !uri.empty() ? uri : env("MLFLOW_TRACKING_URI").value_or("");
  if (s.uri.empty()) return std::nullopt;
  while (!s.uri.empty() && s.uri.back() == '/') s.uri.pop_back();
  if (s.uri.rfind("http://", 0) != 0 && s.uri.rfind("https://", 0) != 0)
    throw UsageError(fmt::format("--mlflow {}: segscale talks to an MLflow tracking server over HTTP (http://HOST:PORT, as "
                                 "`mlflow server` prints); start one with `mlflow server --host 127.0.0.1 --port 5000` for a local store",
                                 s.uri));
#if !SEGSCALE_WITH_S3
  throw UsageError("--mlflow: this segscale was built without its HTTP client (libcurl); rebuild with libcurl4-openssl-dev");
#endif
  s.experiment = !experiment.empty() ? experiment : env("MLFLOW_EXPERIMENT_NAME").value_or("segscale");
  if (experiment.empty()) s.experiment_id = env("MLFLOW_EXPERIMENT_ID").value_or("");
  s.run_name = !run_name.empty() ? run_name : env("MLFLOW_RUN_NAME").value_or("");
  if (s.run_name.empty()) s.run_name = std::filesystem::absolute(run_dir).lexically_normal().filename().string();
  if (s.run_name.empty()) s.run_name = "segscale";
  s.token = env("MLFLOW_TRACKING_TOKEN").value_or("");
  s.user = env("MLFLOW_TRACKING_USERNAME").value_or("");
  s.password = env("MLFLOW_TRACKING_PASSWORD").value_or("");
  if (auto f = env("SEGSCALE_MLFLOW_FLUSH_SECONDS")) {
    try {
      s.flush_seconds = std::stod(*f);
    } catch (const std::exception&) {
      throw UsageError("SEGSCALE_MLFLOW_FLUSH_SECONDS=" + *f + ": not a number of seconds");
    }
  }
  return s;
}

MlflowLog::MlflowLog(MlflowSettings settings, std::filesystem::path run_dir, bool resume, std::vector<std::pair<std::string, std::string>> params,
                     std::vector<std::pair<std::string, std::string>> tags)
    : s_(std::move(settings)), run_dir_(std::move(run_dir)), resume_(resume), params_(std::move(params)), tags_(std::move(tags)) {
  thread_ = std::thread([this] { sender(); });
}

MlflowLog::~MlflowLog() {
  if (thread_.joinable()) {
    s_.flush_seconds = std::min(s_.flush_seconds, 5.0);
    try {
      fmt::print(stderr, "{}\n", finish("FAILED", {}));
    } catch (...) {
    }
  }
}

void MlflowLog::metric(const std::string& key, double value, std::int64_t step) {
  std::lock_guard lk(mu_);
  if (!std::isfinite(value)) {  // JSON has no NaN; MLflow would refuse the whole batch
    ++rejected_;
    return;
  }
  if (queue_.size() >= kMaxQueued) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back({key, value, now_ms(), step});
  if (queue_.size() >= kBatch) cv_.notify_one();
}

json MlflowLog::call(const std::string& method, const std::string& path, const json& body, long* status) {
  storage::HttpRequest req;
  req.method = method;
  req.url = s_.uri + path;
  const std::string text = body.is_null() ? std::string() : body.dump();
  req.body = std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  req.headers.push_back("Content-Type: application/json");
  if (!s_.token.empty()) req.headers.push_back("Authorization: Bearer " + s_.token);
  else if (!s_.user.empty()) req.headers.push_back("Authorization: Basic " + base64(s_.user + ":" + s_.password));
  req.connect_timeout_ms = 3000;
  req.stall_seconds = 10;
  req.total_timeout_ms = 15000;
  const storage::HttpResponse r = send(req, "mlflow " + s_.uri);
  json j;
  if (!r.body.empty()) j = json::parse(r.body.begin(), r.body.end(), nullptr, /*allow_exceptions=*/false);
  if (status) *status = r.status;
  if (r.status >= 200 && r.status < 300) return j;
  const std::string why = fmt::format("{} {} answered HTTP {}{}", method, path.substr(0, path.find('?')), r.status,
                                      j.is_object() && j.contains("message") ? ": " + j["message"].get<std::string>() : std::string());
  if (status && r.status == 404) return j;  // the caller asked to see a missing resource
  if (r.status == 429 || r.status >= 500) throw Error(why);
  throw Rejected(why);
}

void MlflowLog::outage(const std::string& reason) {
  std::lock_guard lk(mu_);
  if (down_) return;
  down_ = true;
  sent_since_outage_ = 0;
  fmt::print(stderr, "segscale: warning: mlflow: {} ({}); metrics are kept and sent when it answers, training goes on\n", s_.uri, reason);
}

bool MlflowLog::ensure_run() {
  const std::filesystem::path state = run_dir_ / "mlflow.json";
  if (resume_ && std::filesystem::exists(state)) {
    json st;
    try {
      st = io::read_json_file(state);
    } catch (const Error& e) {
      fmt::print(stderr, "segscale: warning: mlflow: {}; a new MLflow run is started\n", e.what());
    }
    if (st.value("tracking_uri", "") == s_.uri && !st.value("run_id", "").empty()) {
      long status = 0;
      call("POST", "/api/2.0/mlflow/runs/update", {{"run_id", st["run_id"]}, {"status", "RUNNING"}}, &status);
      if (status != 404) {
        const json run = call("GET", "/api/2.0/mlflow/runs/get?run_id=" + st["run_id"].get<std::string>(), nullptr);
        std::lock_guard lk(mu_);
        run_id_ = st["run_id"];
        experiment_id_ = run["run"]["info"].value("experiment_id", st.value("experiment_id", ""));
        artifact_uri_ = run["run"]["info"].value("artifact_uri", "");
        return true;
      }
      fmt::print(stderr, "segscale: warning: mlflow: run {} of {} is gone from the server; a new MLflow run is started\n",
                 st["run_id"].get<std::string>(), state.string());
    }
  }
  std::string exp = s_.experiment_id;
  if (exp.empty()) {
    long status = 0;
    json got = call("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + encode(s_.experiment, false), nullptr, &status);
    if (status == 404) {
      try {
        got = call("POST", "/api/2.0/mlflow/experiments/create", {{"name", s_.experiment}});
        exp = got.value("experiment_id", "");
      } catch (const Rejected&) {  // created meanwhile by another run
        got = call("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + encode(s_.experiment, false), nullptr);
      }
    }
    if (exp.empty()) exp = got["experiment"].value("experiment_id", "");
  }
  json tags = json::array();
  for (const auto& [k, v] : tags_) tags.push_back({{"key", k}, {"value", v}});
  const json run = call("POST", "/api/2.0/mlflow/runs/create",
                        {{"experiment_id", exp}, {"run_name", s_.run_name}, {"start_time", now_ms()}, {"tags", tags}});
  const std::string id = run["run"]["info"].value("run_id", "");
  if (id.empty()) throw Rejected("runs/create answered without a run id");
  for (std::size_t i = 0; i < params_.size(); i += kParamBatch) {
    json ps = json::array();
    for (std::size_t j = i; j < std::min(params_.size(), i + kParamBatch); ++j)
      ps.push_back({{"key", params_[j].first.substr(0, 250)}, {"value", params_[j].second.substr(0, kMaxParamValue)}});
    call("POST", "/api/2.0/mlflow/runs/log-batch", {{"run_id", id}, {"params", ps}});
  }
  io::write_file_atomic(state, json{{"tracking_uri", s_.uri}, {"experiment_id", exp}, {"run_id", id}}.dump(2) + "\n");
  std::lock_guard lk(mu_);
  run_id_ = id;
  experiment_id_ = exp;
  artifact_uri_ = run["run"]["info"].value("artifact_uri", "");
  fmt::print(stderr, "segscale: mlflow: logging to {}\n", where_locked());  // the run's address while it trains
  return true;
}

bool MlflowLog::send_batch(std::vector<Metric>& batch) {
  json ms = json::array();
  for (const Metric& m : batch) ms.push_back({{"key", m.key}, {"value", m.value}, {"timestamp", m.timestamp_ms}, {"step", m.step}});
  call("POST", "/api/2.0/mlflow/runs/log-batch", {{"run_id", run_id_}, {"metrics", ms}});
  return true;
}

void MlflowLog::upload_artifacts() {
  if (artifacts_.empty()) return;
  const std::string scheme = "mlflow-artifacts:";
  if (artifact_uri_.rfind(scheme, 0) != 0) {
    artifact_note_ = fmt::format("artifacts not uploaded: the server keeps this run's artifacts at {}, which it does not serve "
                                 "(start `mlflow server` with artifact serving, its default)",
                                 artifact_uri_.empty() ? "an unknown place" : artifact_uri_);
    return;
  }
  std::string path = artifact_uri_.substr(scheme.size());
  if (path.rfind("//", 0) == 0) path = path.substr(std::min(path.size(), path.find('/', 2)));  // mlflow-artifacts://host:port/...
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  int uploaded = 0;
  for (const auto& [name, file] : artifacts_) {
    if (!std::filesystem::exists(file)) continue;
    const io::Bytes b = io::read_file(file);
    storage::HttpRequest req;
    req.method = "PUT";
    req.url = s_.uri + "/api/2.0/mlflow-artifacts/artifacts/" + encode(path + "/" + name, true);
    req.body = b;
    req.headers.push_back("Content-Type: application/octet-stream");
    if (!s_.token.empty()) req.headers.push_back("Authorization: Bearer " + s_.token);
    else if (!s_.user.empty()) req.headers.push_back("Authorization: Basic " + base64(s_.user + ":" + s_.password));
    req.connect_timeout_ms = 3000;
    const storage::HttpResponse r = send(req, "mlflow " + s_.uri);
    if (r.status == 429 || r.status >= 500) throw Error(fmt::format("uploading {} answered HTTP {}", name, r.status));
    if (r.status < 200 || r.status >= 300) throw Rejected(fmt::format("uploading {} answered HTTP {}", name, r.status));
    ++uploaded;
  }
  artifact_note_ = fmt::format("{} artifacts uploaded", uploaded);
}

void MlflowLog::sender() {
  std::unique_lock lk(mu_);
  std::vector<Metric> inflight;
  double backoff = 0.25;
  bool have_run = false, uploaded = false;
  auto give_up = [&] { return finishing_ && Clock::now() >= deadline_; };
  while (!stop_) {
    try {
      if (!have_run) {
        lk.unlock();
        ensure_run();
        lk.lock();
        have_run = true;
      }
      if (inflight.empty()) {
        if (queue_.empty() && !finishing_) {
          cv_.wait_for(lk, std::chrono::seconds(1));
          continue;
        }
        if (!finishing_ && queue_.size() < kBatch) cv_.wait_for(lk, std::chrono::seconds(1), [&] { return finishing_ || queue_.size() >= kBatch; });
        const std::size_t n = std::min(kBatch, queue_.size());
        inflight.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      if (!inflight.empty()) {
        lk.unlock();
        send_batch(inflight);
        lk.lock();
        sent_ += static_cast<std::int64_t>(inflight.size());
        sent_since_outage_ += static_cast<std::int64_t>(inflight.size());
        inflight.clear();
      }
      if (down_) {
        down_ = false;
        backoff = 0.25;
        fmt::print(stderr, "segscale: mlflow: {} answers again; {} metrics delivered since it stopped\n", s_.uri, sent_since_outage_);
      }
      if (finishing_ && queue_.empty() && inflight.empty()) {
        lk.unlock();
        if (!uploaded) upload_artifacts();
        uploaded = true;
        call("POST", "/api/2.0/mlflow/runs/update", {{"run_id", run_id_}, {"status", status_}, {"end_time", now_ms()}});
        lk.lock();
        finished_remote_ = true;
        break;
      }
    } catch (const Rejected& e) {
      if (!lk.owns_lock()) lk.lock();
      // A request the server refuses is dropped (retrying would refuse again); a run it refuses to create ends MLflow logging.
      fmt::print(stderr, "segscale: warning: mlflow: {}: {}\n", s_.uri, e.what());
      rejected_ += static_cast<std::int64_t>(inflight.size());
      inflight.clear();
      if (!have_run || (finishing_ && queue_.empty())) {
        rejected_ += static_cast<std::int64_t>(queue_.size());
        queue_.clear();
        break;
      }
    } catch (const std::exception& e) {
      if (!lk.owns_lock()) lk.lock();
      lk.unlock();
      outage(e.what());
      lk.lock();
      if (give_up()) break;
      const auto until = std::min(Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(backoff)),
                                  finishing_ ? deadline_ : Clock::time_point::max());
      cv_.wait_until(lk, until, [&] { return stop_; });
      backoff = std::min(backoff * 2, 2.0);
    }
    if (give_up()) break;
  }
  // Whatever is left is not delivered: counted for finish()'s line.
  dropped_ += static_cast<std::int64_t>(inflight.size() + queue_.size());
  queue_.clear();
}

std::string MlflowLog::finish(const std::string& status, const std::vector<std::pair<std::string, std::filesystem::path>>& artifacts) {
  {
    std::lock_guard lk(mu_);
    if (!thread_.joinable()) return "mlflow: already finished";
    status_ = status;
    artifacts_ = artifacts;
    finishing_ = true;
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s_.flush_seconds));
  }
  cv_.notify_all();
  thread_.join();
  std::lock_guard lk(mu_);
  std::string line = fmt::format("mlflow: {} metrics sent to {}", sent_, where_locked());
  if (dropped_) line += fmt::format("; {} metrics not delivered (the server did not answer within {:g} s of the end)", dropped_, s_.flush_seconds);
  if (rejected_) line += fmt::format("; {} metrics refused by the server", rejected_);
  if (!artifact_note_.empty()) line += "; " + artifact_note_;
  if (run_id_.empty()) line += "; no MLflow run was created";
  else if (!finished_remote_) line += "; the run's status was not set to " + status;
  return line;
}

std::string MlflowLog::where() const {
  std::lock_guard lk(mu_);
  return where_locked();
}

std::string MlflowLog::where_locked() const {
  if (run_id_.empty()) return s_.uri;
  return fmt::format("{}/#/experiments/{}/runs/{}", s_.uri, experiment_id_, run_id_);
}

}  // namespace segscale::train
