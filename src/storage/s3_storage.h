#pragma once
// S3 (and S3-compatible stores) behind the Storage interface, on libcurl with its own SigV4 signing.
//   URL: s3://bucket[/prefix]. Endpoint: resolve_s3_endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
//   services section or endpoint_url; path-style addressing, for MinIO, Ceph, R2, SeaweedFS, moto, ...), else
//   https://BUCKET.s3.REGION.amazonaws.com (virtual-hosted). A connection failure names the host.
//   Credentials and region: see aws_credentials.h; temporary ones are refreshed before they expire.
//   Retries: AWS_MAX_ATTEMPTS attempts in all (default 5) with the AWS SDKs' full-jitter exponential backoff
//   (after attempt n, a random wait below min(20 s, 2^(n-1) s)) on 503 SlowDown, 429, 5xx and dropped or
//   timed-out connections. Connections time out after 10 s; a transfer
//   stalled for 30 s (SEGSCALE_S3_STALL_SECONDS) is aborted and retried.
//   Objects above the part size (SEGSCALE_S3_PART_MIB, default 64, at least 5) are written as multipart
//   uploads, completed only when every part is in; nothing is visible under the final key before that. A
//   failed upload is resumed by the next write of the same key (parts whose MD5 matches are kept).
//   Errors: "s3://bucket/key: NoSuchKey (HTTP 404): <S3's message>" on one line; never a key or token.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "storage/aws_credentials.h"
#include "storage/http.h"
#include "storage/storage.h"

namespace segscale::storage {

struct S3Location {
  std::string bucket;
  std::string prefix;  // without leading or trailing '/'; may be empty
};
// Parses "s3://bucket[/prefix]". Throws UsageError for anything else (no bucket, bad bucket characters).
S3Location parse_s3_url(const std::string& url);

class S3Storage final : public Storage {
 public:
  explicit S3Storage(const std::string& url, GetEnv env = process_env());

  std::string root() const override;
  std::string where(const std::string& name) const override;
  bool is_local() const override { return false; }
  io::Bytes read(const std::string& name) override;
  io::Bytes read_range(const std::string& name, std::uint64_t offset, std::uint64_t size) override;
  std::optional<std::uint64_t> size(const std::string& name) override;
  std::vector<std::string> list(const std::string& prefix) override;
  void make_root() override;
  void write_atomic(const std::string& name, std::span<const std::uint8_t> data) override;
  std::filesystem::path temp_path(const std::string& name) override;
  void commit_temp(const std::filesystem::path& temp, const std::string& name) override;
  void remove(const std::string& name) override;
  std::size_t remove_leftovers(const std::vector<std::string>& keep) override;

  std::uint64_t part_size() const { return part_size_; }

 private:
  std::string key(const std::string& name) const;
  std::string url_for(const std::string& key, const std::string& query) const;
  // Sends a signed request with retries. Returns the response when its status is in `ok` (or 2xx when
  // `ok` is empty); throws Error naming `where` and S3's error code otherwise.
  HttpResponse call(const std::string& method, const std::string& key, const std::string& query, std::vector<std::string> headers,
                    std::span<const std::uint8_t> body, const std::string& where, std::initializer_list<long> ok = {});
  void check_bucket();
  void upload_multipart(const std::filesystem::path& temp, const std::string& name, std::uint64_t size);
  struct Upload {
    std::string key, id;
  };
  // Unfinished multipart uploads whose key starts with `key_prefix`.
  std::vector<Upload> unfinished_uploads(const std::string& key_prefix);

  S3Location loc_;
  std::string endpoint_;  // "http://127.0.0.1:5000" (path-style) or "" (virtual-hosted AWS)
  std::string endpoint_source_;  // where endpoint_ was configured, for messages
  std::string region_;
  CredentialCache creds_;
  int max_attempts_ = 5;
  long stall_seconds_ = 30;
  std::uint64_t part_size_ = 64ull << 20;
  std::atomic<int> bucket_checked_{0};
};

}  // namespace segscale::storage
