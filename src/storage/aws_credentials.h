#pragma once
// AWS credentials and region as the AWS SDKs find them, in their order:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
//   2. the profile AWS_PROFILE (default "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
//      AWS_CONFIG_FILE (~/.aws/config, section "[profile NAME]"); static keys only (no SSO, role_arn or
//      credential_process: those are reported as unsupported)
//   3. the container endpoint (SageMaker, ECS, EKS): AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on 169.254.170.2, or
//      AWS_CONTAINER_CREDENTIALS_FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) when set
//   4. EC2 instance metadata, IMDSv2 (token first), unless AWS_EC2_METADATA_DISABLED=true;
//      AWS_EC2_METADATA_SERVICE_ENDPOINT overrides http://169.254.169.254
// Region: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1.
// Endpoint (S3-compatible stores): see resolve_s3_endpoint.
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace segscale::storage {

struct Credentials {
  std::string access_key, secret_key, session_token;  // session_token empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expires;  // temporary credentials only
  std::string source;  // "environment", "profile NAME", "container endpoint", "instance metadata"
};

// Reads a variable; the default reads the process environment. Tests pass their own.
using GetEnv = std::function<std::optional<std::string>(const std::string&)>;
GetEnv process_env();

// Resolves credentials through the chain above. Throws Error naming every place it looked (never a value)
// when none has them, or naming the source that is broken (malformed file, endpoint answered an error).
Credentials resolve_credentials(const GetEnv& env);
std::string resolve_region(const GetEnv& env);
// The container credentials endpoint, as the AWS SDKs pick it: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on
// 169.254.170.2 (ECS, SageMaker), else AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity); nullopt without.
std::optional<std::string> container_credentials_url(const GetEnv& env);

// A configured S3 endpoint and where it was found ("AWS_ENDPOINT_URL", "profile dev's endpoint_url in
// /root/.aws/config", ...), for messages.
struct Endpoint {
  std::string url;  // e.g. "http://minio:9000", no trailing '/'
  std::string source;
};
// The S3 endpoint as the AWS CLI and SDKs choose it ("service-specific endpoints"), the first found of:
// AWS_ENDPOINT_URL_S3; AWS_ENDPOINT_URL; in the config file, the `services` section the profile names
// ([services NAME] holding "s3 =" with an indented "endpoint_url = URL"); the profile's own endpoint_url.
// nullopt (AWS itself) when none is set, or when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true or the profile's
// ignore_configured_endpoint_urls = true. Throws Error for a malformed config file.
std::optional<Endpoint> resolve_s3_endpoint(const GetEnv& env);

// "2026-11-26T15:00:00Z" -> time point. Throws Error for anything else.
std::chrono::system_clock::time_point parse_iso8601_utc(const std::string& s);

// Holds the current credentials and resolves them again when they expire within `refresh_margin`
// (temporary credentials from a container endpoint or instance metadata). Thread-safe.
class CredentialCache {
 public:
  explicit CredentialCache(GetEnv env, std::chrono::seconds refresh_margin = std::chrono::minutes(5));
  Credentials get();
  // Forgets the cached credentials (after S3 said ExpiredToken), so the next get() resolves them again.
  void invalidate();

 private:
  GetEnv env_;
  std::chrono::seconds margin_;
  std::mutex mu_;
  std::optional<Credentials> cur_;
};

}  // namespace segscale::storage
