#include "storage/s3_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "storage/s3_xml.h"
#include "util/error.h"

namespace segscale::storage {
namespace fs = std::filesystem;

namespace {

std::string md5_hex(std::span<const std::uint8_t> data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr) != 1) throw Error("OpenSSL: MD5 failed");
  return fmt::format("{:02x}", fmt::join(md, md + n, ""));
}

bool retryable(long status, const std::string& code) {
  return status == 429 || status >= 500 || code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "Throttling";
}

std::string error_code_for(long status) {
  switch (status) {
    case 403: return "AccessDenied";
    case 404: return "NotFound";
    case 503: return "SlowDown";
    default: return "HTTP error";
  }
}

// The AWS SDKs' "standard" retry backoff: after attempt n (1-based), a uniform delay in [0, min(20 s, 2^(n-1) s)).
// A restarted SeaweedFS answers 500 until its volume server has reported to the master (about a second here):
// the earlier 50 ms base gave up after 0.35 s at most with 3 attempts.
void sleep_backoff(int attempt) {
  thread_local std::mt19937_64 gen(std::random_device{}());
  const double cap_ms = std::min(20000.0, 1000.0 * static_cast<double>(1 << std::min(attempt - 1, 15)));
  std::uniform_real_distribution<double> d(0.0, cap_ms);  // "full jitter"
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(d(gen) * 1000)));
}

// "http://minio:9000/bkt/key?x" -> "minio:9000".
std::string url_host(const std::string& url) {
  const auto scheme = url.find("://");
  const std::size_t b = scheme == std::string::npos ? 0 : scheme + 3;
  return url.substr(b, url.find_first_of("/?", b) - b);
}

long env_long(const GetEnv& env, const char* name, long fallback, long lo) {
  auto v = env(name);
  if (!v || v->empty()) return fallback;
  char* end = nullptr;
  long x = std::strtol(v->c_str(), &end, 10);
  if (*end != '\0' || x < lo) throw UsageError(fmt::format("{}={}: expected an integer >= {}", name, *v, lo));
  return x;
}

}  // namespace

S3Location parse_s3_url(const std::string& url) {
  if (!url.starts_with("s3://")) throw UsageError(url + ": not an s3:// URL");
  std::string rest = url.substr(5);
  auto slash = rest.find('/');
  S3Location loc{rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash + 1)};
  while (!loc.prefix.empty() && loc.prefix.back() == '/') loc.prefix.pop_back();
  while (!loc.prefix.empty() && loc.prefix.front() == '/') loc.prefix.erase(0, 1);
  if (loc.bucket.size() < 3 || loc.bucket.size() > 63 ||
      !std::all_of(loc.bucket.begin(), loc.bucket.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'; }))
    throw UsageError(url + ": expected s3://BUCKET[/PREFIX] with a bucket name of 3-63 lower-case letters, digits, '-' or '.'");
  return loc;
}

S3Storage::S3Storage(const std::string& url, GetEnv env) : loc_(parse_s3_url(url)), creds_(env) {
  if (auto e = resolve_s3_endpoint(env)) {  // the environment's, else the profile's (aws_credentials.h)
    endpoint_ = e->url;
    endpoint_source_ = e->source;
  }
  region_ = resolve_region(env);
  max_attempts_ = static_cast<int>(env_long(env, "AWS_MAX_ATTEMPTS", 5, 1));
  stall_seconds_ = env_long(env, "SEGSCALE_S3_STALL_SECONDS", 30, 1);
  part_size_ = static_cast<std::uint64_t>(env_long(env, "SEGSCALE_S3_PART_MIB", 64, 5)) << 20;
}

std::string S3Storage::root() const { return "s3://" + loc_.bucket + (loc_.prefix.empty() ? "" : "/" + loc_.prefix); }
std::string S3Storage::where(const std::string& name) const { return "s3://" + loc_.bucket + "/" + key(name); }
std::string S3Storage::key(const std::string& name) const { return loc_.prefix.empty() ? name : loc_.prefix + "/" + name; }

std::string S3Storage::url_for(const std::string& k, const std::string& query) const {
  std::string u;
  if (!endpoint_.empty()) u = endpoint_ + "/" + loc_.bucket + "/" + url_encode(k, true);
  else if (loc_.bucket.find('.') != std::string::npos) u = fmt::format("https://s3.{}.amazonaws.com/{}/{}", region_, loc_.bucket, url_encode(k, true));
  else u = fmt::format("https://{}.s3.{}.amazonaws.com/{}", loc_.bucket, region_, url_encode(k, true));
  return query.empty() ? u : u + "?" + query;
}

HttpResponse S3Storage::call(const std::string& method, const std::string& k, const std::string& query, std::vector<std::string> headers,
                             std::span<const std::uint8_t> body, const std::string& where, std::initializer_list<long> ok) {
  headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  bool refreshed = false;
  for (int attempt = 1;; ++attempt) {
    Credentials c = creds_.get();
    HttpRequest req;
    req.method = method;
    req.url = url_for(k, query);
    req.headers = headers;
    if (!c.session_token.empty()) req.headers.push_back("x-amz-security-token: " + c.session_token);
    req.body = body;
    req.sigv4 = "aws:amz:" + region_ + ":s3";
    req.access_key = c.access_key;
    req.secret_key = c.secret_key;
    req.stall_seconds = stall_seconds_;
    HttpResponse r;
    try {
      r = http_request(req, where);
    } catch (const Error& e) {
      // A connection that failed names the host it tried (and where a configured endpoint came from).
      if (attempt >= max_attempts_)
        throw Error(fmt::format("{} (host {}{}; after {} attempts)", e.what(), url_host(req.url),
                                endpoint_.empty() ? std::string() : ", endpoint from " + endpoint_source_, attempt));
      sleep_backoff(attempt);
      continue;
    }
    const bool good = ok.size() ? std::find(ok.begin(), ok.end(), r.status) != ok.end() : (r.status >= 200 && r.status < 300);
    const std::string text(r.body.begin(), r.body.end());
    // CompleteMultipartUpload can answer 200 with an <Error> body.
    const bool error_body = good && method == "POST" && text.find("<Error>") != std::string::npos;
    if (good && !error_body) return r;
    std::string code = xml_text(text, "Code");
    if (code.empty()) code = error_code_for(r.status);  // HEAD answers carry no body
    if ((code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidToken") && !refreshed) {
      creds_.invalidate();
      refreshed = true;
      continue;
    }
    if ((retryable(r.status, code) || error_body) && attempt < max_attempts_) {
      sleep_backoff(attempt);
      continue;
    }
    std::string msg = xml_text(text, "Message");
    if (msg.size() > 200) msg = msg.substr(0, 200) + "...";
    std::string hint;
    if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "AccessDenied")
      hint = fmt::format(" (credentials from {}; check the key pair and the region {})", c.source, region_);
    throw error_at(where, fmt::format("{} (HTTP {}){}{}{}", code, r.status, msg.empty() ? "" : ": ", msg, hint) +
                              (attempt > 1 ? fmt::format(" (after {} attempts)", attempt) : ""));
  }
}

void S3Storage::check_bucket() {
  if (bucket_checked_.load()) return;
  const std::string where = "s3://" + loc_.bucket;
  HttpResponse r = call("GET", "", "list-type=2&max-keys=1", {}, {}, where, {200, 404});
  if (r.status == 404) {
    std::string text(r.body.begin(), r.body.end());
    std::string code = xml_text(text, "Code");
    throw error_at(where, fmt::format("{} (HTTP 404): {}", code.empty() ? "NoSuchBucket" : code,
                                      code == "NoSuchBucket" || code.empty() ? "the bucket does not exist" : xml_text(text, "Message")));
  }
  bucket_checked_.store(1);
}

io::Bytes S3Storage::read(const std::string& name) {
  return std::move(call("GET", key(name), "", {}, {}, where(name)).body);
}

io::Bytes S3Storage::read_range(const std::string& name, std::uint64_t offset, std::uint64_t size) {
  if (size == 0) return {};
  HttpResponse r = call("GET", key(name), "", {fmt::format("Range: bytes={}-{}", offset, offset + size - 1)}, {}, where(name), {206, 200, 416});
  if (r.status == 416) throw error_at(where(name), fmt::format("short read (0 of {} bytes at offset {}): InvalidRange", size, offset));
  if (r.status == 200) {  // a server that ignores Range sends the whole object
    if (r.body.size() < offset + size)
      throw error_at(where(name), fmt::format("short read ({} bytes in the object, {} wanted at offset {})", r.body.size(), size, offset));
    io::Bytes out;
    out.resize(size);
    std::memcpy(out.data(), r.body.data() + offset, size);
    return out;
  }
  if (r.body.size() != size)
    throw error_at(where(name), fmt::format("short read ({} of {} bytes at offset {})", r.body.size(), size, offset));
  return std::move(r.body);
}

std::optional<std::uint64_t> S3Storage::size(const std::string& name) {
  HttpResponse r = call("HEAD", key(name), "", {}, {}, where(name), {200, 404});
  if (r.status == 404) {
    check_bucket();  // a missing bucket is an error, not a missing object
    return std::nullopt;
  }
  auto it = r.headers.find("content-length");
  if (it == r.headers.end()) throw error_at(where(name), "HEAD answered without Content-Length");
  return std::stoull(it->second);
}

std::vector<std::string> S3Storage::list(const std::string& prefix) {
  std::vector<std::string> out;
  const std::string base = loc_.prefix.empty() ? "" : loc_.prefix + "/";
  std::string token;
  for (;;) {
    // Query parameters in SigV4's canonical (sorted) order.
    std::string q = (token.empty() ? "" : "continuation-token=" + url_encode(token, false) + "&") + "list-type=2&prefix=" +
                    url_encode(base + prefix, false);
    HttpResponse r = call("GET", "", q, {}, {}, root() + (prefix.empty() ? "/" : "/" + prefix + "*"), {200, 404});
    std::string text(r.body.begin(), r.body.end());
    if (r.status == 404) throw error_at("s3://" + loc_.bucket, fmt::format("{} (HTTP 404): {}", xml_text(text, "Code"), xml_text(text, "Message")));
    for (auto& k : xml_texts(text, "Key"))
      if (k.starts_with(base)) out.push_back(k.substr(base.size()));
    if (xml_text(text, "IsTruncated") != "true") break;
    token = xml_text(text, "NextContinuationToken");
    if (token.empty()) throw error_at(root(), "ListObjectsV2 truncated without a continuation token");
  }
  std::sort(out.begin(), out.end());
  return out;
}

void S3Storage::make_root() { check_bucket(); }

void S3Storage::write_atomic(const std::string& name, std::span<const std::uint8_t> data) {
  call("PUT", key(name), "", {"Content-Type: application/octet-stream"}, data, where(name));
}

fs::path S3Storage::temp_path(const std::string& name) {
  const fs::path dir = temp_root() / "segscale-s3-spool";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw error_at(dir.string(), "cannot create the upload spool folder: " + ec.message());
  std::string flat = name;
  std::replace(flat.begin(), flat.end(), '/', '_');
  return dir / io::temp_name(flat);
}

void S3Storage::commit_temp(const fs::path& temp, const std::string& name) {
  struct Remove {
    const fs::path& p;
    ~Remove() { ::unlink(p.c_str()); }
  } remove_temp{temp};
  std::error_code ec;
  const std::uint64_t n = fs::file_size(temp, ec);
  if (ec) throw error_at(temp.string(), "cannot stat the upload: " + ec.message());
  if (n > part_size_) return upload_multipart(temp, name, n);
  write_atomic(name, io::read_file(temp));
}

std::vector<S3Storage::Upload> S3Storage::unfinished_uploads(const std::string& key_prefix) {
  std::vector<Upload> out;
  std::string key_marker, id_marker;
  for (;;) {
    // Query parameters in SigV4's canonical (sorted) order.
    std::string q = (key_marker.empty() ? "" : "key-marker=" + url_encode(key_marker, false) + "&") + "prefix=" + url_encode(key_prefix, false) +
                    (id_marker.empty() ? "" : "&upload-id-marker=" + url_encode(id_marker, false)) + "&uploads=";
    HttpResponse r = call("GET", "", q, {}, {}, "s3://" + loc_.bucket + "/" + key_prefix + "* (unfinished uploads)");
    const std::string text(r.body.begin(), r.body.end());
    for (const auto& u : xml_texts(text, "Upload")) out.push_back({xml_text(u, "Key"), xml_text(u, "UploadId")});
    if (xml_text(text, "IsTruncated") != "true") break;
    key_marker = xml_text(text, "NextKeyMarker");
    id_marker = xml_text(text, "NextUploadIdMarker");
    if (key_marker.empty()) break;
  }
  return out;
}

std::size_t S3Storage::remove_leftovers(const std::vector<std::string>& keep) {
  std::size_t n = 0;
  for (const auto& u : unfinished_uploads(key(""))) {
    if (std::any_of(keep.begin(), keep.end(), [&](const std::string& k) { return u.key == key(k); })) continue;
    call("DELETE", u.key, "uploadId=" + url_encode(u.id, false), {}, {}, "s3://" + loc_.bucket + "/" + u.key, {200, 204, 404});
    ++n;
  }
  return n;
}

void S3Storage::upload_multipart(const fs::path& temp, const std::string& name, std::uint64_t size) {
  const std::string k = key(name), w = where(name);
  // Resume an upload a killed or failed writer left for this key: its parts with our bytes are kept.
  std::string upload_id;
  std::map<int, std::string> have;  // part number -> ETag
  for (const auto& u : unfinished_uploads(k))
    if (u.key == k) upload_id = u.id;
  if (!upload_id.empty()) {
    HttpResponse parts = call("GET", k, "uploadId=" + url_encode(upload_id, false), {}, {}, w, {200, 404});
    const std::string text(parts.body.begin(), parts.body.end());
    if (parts.status == 404) upload_id.clear();  // NoSuchUpload: finished or aborted meanwhile
    for (const auto& p : xml_texts(text, "Part")) have[std::atoi(xml_text(p, "PartNumber").c_str())] = xml_text(p, "ETag");
  }
  if (upload_id.empty()) {
    have.clear();
    HttpResponse created = call("POST", k, "uploads=", {"Content-Type: application/octet-stream"}, {}, w);
    upload_id = xml_text(std::string(created.body.begin(), created.body.end()), "UploadId");
    if (upload_id.empty()) throw error_at(w, "CreateMultipartUpload answered without an UploadId");
  }
  const std::string id_q = "uploadId=" + url_encode(upload_id, false);
  int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw error_at(temp.string(), std::string("cannot open the upload: ") + std::strerror(errno));
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  std::string complete = "<CompleteMultipartUpload>";
  io::Bytes part;
  int number = 1;
  for (std::uint64_t off = 0; off < size; off += part_size_, ++number) {
    const std::uint64_t len = std::min(part_size_, size - off);
    part.resize(len);
    std::size_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd, part.data() + got, len - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw error_at(temp.string(), "short read of the upload");
      got += static_cast<std::size_t>(r);
    }
    std::string etag = "\"" + md5_hex(part) + "\"";
    auto it = have.find(number);
    if (it == have.end() || it->second != etag) {
      HttpResponse r = call("PUT", k, fmt::format("partNumber={}&{}", number, id_q), {"Content-Type: application/octet-stream"}, part,
                            fmt::format("{} (part {})", w, number));
      auto e = r.headers.find("etag");
      if (e == r.headers.end()) throw error_at(w, fmt::format("part {}: UploadPart answered without an ETag", number));
      etag = e->second;
    }
    complete += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", number, etag);
  }
  complete += "</CompleteMultipartUpload>";
  call("POST", k, id_q, {"Content-Type: application/xml"}, {reinterpret_cast<const std::uint8_t*>(complete.data()), complete.size()}, w);
}

void S3Storage::remove(const std::string& name) { call("DELETE", key(name), "", {}, {}, where(name), {200, 204, 404}); }

}  // namespace segscale::storage
