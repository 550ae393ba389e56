#include "storage/aws_credentials.h"

#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "storage/http.h"
#include "util/error.h"

namespace segscale::storage {
namespace {

using Ini = std::map<std::string, std::map<std::string, std::string>>;

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Reads an AWS ini file; a missing file is empty. Throws Error for a line that is neither section,
// key = value, comment nor blank. Nested sub-settings (an indented "key = value" under a "name =" line with
// no value, as in `s3 =` / `  endpoint_url = ...`) are stored as "name.key".
Ini read_ini(const std::string& path) {
  Ini ini;
  std::ifstream in(path);
  if (!in) return ini;
  std::string raw, section, parent;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const bool indented = !raw.empty() && (raw[0] == ' ' || raw[0] == '\t');
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && !indented) {
      if (line.back() != ']') throw error_at(fmt::format("{}:{}", path, n), "malformed section header");
      section = trim(line.substr(1, line.size() - 2));
      parent.clear();
      ini[section];
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      if (indented) continue;  // a continuation line of a value we do not read
      throw error_at(fmt::format("{}:{}", path, n), "expected key = value");
    }
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (section.empty()) continue;
    if (indented && !parent.empty()) {
      ini[section][parent + "." + key] = value;
      continue;
    }
    ini[section][key] = value;
    parent = value.empty() ? key : std::string();
  }
  return ini;
}

std::string home_file(const GetEnv& env, const char* var, const char* rel) {
  if (auto v = env(var)) return *v;
  auto home = env("HOME");
  return (home ? *home : std::string(".")) + rel;
}

struct Profile {
  std::string name;
  bool explicit_name = false;
  std::map<std::string, std::string> creds, config;  // from credentials and config files
  std::map<std::string, std::string> services;       // the config file's [services NAME] that the profile names
  std::string creds_file, config_file;
};

Profile load_profile(const GetEnv& env) {
  Profile p;
  auto name = env("AWS_PROFILE");
  p.explicit_name = name.has_value() && !name->empty();
  p.name = p.explicit_name ? *name : "default";
  p.creds_file = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials");
  p.config_file = home_file(env, "AWS_CONFIG_FILE", "/.aws/config");
  Ini c = read_ini(p.creds_file), f = read_ini(p.config_file);
  if (c.count(p.name)) p.creds = c[p.name];
  const std::string cfg = p.name == "default" ? "default" : "profile " + p.name;
  if (f.count(cfg)) p.config = f[cfg];
  if (p.config.count("services") && f.count("services " + p.config["services"])) p.services = f["services " + p.config["services"]];
  return p;
}

std::optional<Credentials> from_profile(const Profile& p) {
  auto get = [&](const std::string& k) -> std::string {
    if (p.creds.count(k)) return p.creds.at(k);
    if (p.config.count(k)) return p.config.at(k);
    return "";
  };
  Credentials c{get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token"), std::nullopt, "profile " + p.name};
  if (!c.access_key.empty() && !c.secret_key.empty()) return c;
  if (!c.access_key.empty() || !c.secret_key.empty())
    throw error_at(p.creds_file, fmt::format("profile {} has only one of aws_access_key_id and aws_secret_access_key", p.name));
  for (const char* k : {"role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file"})
    if (!get(k).empty()) throw error_at(p.config_file, fmt::format("profile {} uses {}, which segscale does not support; "
                                                                   "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use static keys", p.name, k));
  if (p.explicit_name && p.creds.empty() && p.config.empty())
    throw error_at(p.creds_file, fmt::format("AWS_PROFILE={} but no such profile in {} or {}", p.name, p.creds_file, p.config_file));
  return std::nullopt;
}

Credentials from_json(const std::string& body, const std::string& where, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
    Credentials c{j.at("AccessKeyId").get<std::string>(), j.at("SecretAccessKey").get<std::string>(),
                  j.value("Token", std::string()), std::nullopt, source};
    if (j.contains("Expiration")) c.expires = parse_iso8601_utc(j["Expiration"].get<std::string>());
    return c;
  } catch (const nlohmann::json::exception&) {
    throw error_at(where, "malformed credentials (expected JSON with AccessKeyId, SecretAccessKey, Token, Expiration)");
  }
}

}  // namespace

std::optional<std::string> container_credentials_url(const GetEnv& env) {
  if (auto rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel && !rel->empty()) return "http://169.254.170.2" + *rel;
  if (auto full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI"); full && !full->empty()) return *full;
  return std::nullopt;
}

namespace {
std::optional<Credentials> from_container(const GetEnv& env) {
  const auto url = container_credentials_url(env);
  if (!url) return std::nullopt;
  HttpRequest req;
  req.url = *url;
  req.connect_timeout_ms = 2000;
  req.total_timeout_ms = 5000;
  std::string token;
  if (auto f = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f && !f->empty()) {
    std::ifstream in(*f);
    if (!in) throw error_at(*f, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    std::stringstream ss;
    ss << in.rdbuf();
    token = trim(ss.str());
  } else if (auto t = env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
    token = *t;
  }
  if (!token.empty()) req.headers.push_back("Authorization: " + token);
  const std::string where = "container credentials endpoint";
  HttpResponse r = http_request(req, where);
  if (r.status != 200) throw error_at(where, fmt::format("HTTP {}", r.status));
  return from_json(std::string(r.body.begin(), r.body.end()), where, "container endpoint");
}

std::optional<Credentials> from_imds(const GetEnv& env) {
  if (auto d = env("AWS_EC2_METADATA_DISABLED"); d && (*d == "true" || *d == "TRUE" || *d == "1")) return std::nullopt;
  std::string base = "http://169.254.169.254";
  if (auto e = env("AWS_EC2_METADATA_SERVICE_ENDPOINT"); e && !e->empty()) base = *e;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string where = "EC2 instance metadata";
  HttpRequest req;
  req.connect_timeout_ms = 1000;
  req.total_timeout_ms = 2000;
  req.method = "PUT";
  req.url = base + "/latest/api/token";
  req.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
  HttpResponse tok;
  try {
    tok = http_request(req, where);
  } catch (const Error&) {
    return std::nullopt;  // not on EC2
  }
  if (tok.status != 200) return std::nullopt;
  req.method = "GET";
  req.headers = {"X-aws-ec2-metadata-token: " + std::string(tok.body.begin(), tok.body.end())};
  req.url = base + "/latest/meta-data/iam/security-credentials/";
  HttpResponse role = http_request(req, where);
  if (role.status == 404) return std::nullopt;  // an instance without a role
  if (role.status != 200) throw error_at(where, fmt::format("HTTP {} listing the instance role", role.status));
  std::string name = trim(std::string(role.body.begin(), role.body.end()));
  if (auto nl = name.find('\n'); nl != std::string::npos) name = name.substr(0, nl);
  req.url += name;
  HttpResponse cr = http_request(req, where);
  if (cr.status != 200) throw error_at(where, fmt::format("HTTP {} fetching the role's credentials", cr.status));
  return from_json(std::string(cr.body.begin(), cr.body.end()), where, "instance metadata");
}

}  // namespace

GetEnv process_env() {
  return [](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::chrono::system_clock::time_point parse_iso8601_utc(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) throw Error(fmt::format("credentials: malformed expiration time \"{}\"", s));
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Credentials resolve_credentials(const GetEnv& env) {
  auto id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret && !id->empty() && !secret->empty()) {
    auto token = env("AWS_SESSION_TOKEN");
    return {*id, *secret, token ? *token : "", std::nullopt, "environment"};
  }
  Profile p = load_profile(env);
  if (auto c = from_profile(p)) return *c;
  if (auto c = from_container(env)) return *c;
  if (auto c = from_imds(env)) return *c;
  throw Error(fmt::format("S3: no AWS credentials found (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile {} in {} and {}, "
                          "the container credentials endpoint, EC2 instance metadata)",
                          p.name, p.creds_file, p.config_file));
}

std::string resolve_region(const GetEnv& env) {
  for (const char* k : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (auto v = env(k); v && !v->empty()) return *v;
  Profile p = load_profile(env);
  if (p.config.count("region") && !p.config["region"].empty()) return p.config["region"];
  return "us-east-1";
}

std::optional<Endpoint> resolve_s3_endpoint(const GetEnv& env) {
  auto truthy = [](const std::string& v) { return v == "true" || v == "TRUE" || v == "True"; };
  if (auto v = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); v && truthy(*v)) return std::nullopt;
  Profile p = load_profile(env);
  // The profile's switch ignores the environment's endpoints too (as the SDKs document it).
  if (p.config.count("ignore_configured_endpoint_urls") && truthy(p.config["ignore_configured_endpoint_urls"])) return std::nullopt;
  auto make = [](std::string url, std::string source) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return Endpoint{url, source};
  };
  for (const char* k : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"})
    if (auto v = env(k); v && !v->empty()) return make(*v, k);
  if (auto it = p.services.find("s3.endpoint_url"); it != p.services.end() && !it->second.empty())
    return make(it->second, fmt::format("[services {}] s3.endpoint_url in {}", p.config["services"], p.config_file));
  if (auto it = p.config.find("endpoint_url"); it != p.config.end() && !it->second.empty())
    return make(it->second, fmt::format("profile {}'s endpoint_url in {}", p.name, p.config_file));
  return std::nullopt;
}

CredentialCache::CredentialCache(GetEnv env, std::chrono::seconds margin) : env_(std::move(env)), margin_(margin) {}

Credentials CredentialCache::get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cur_ && cur_->expires && *cur_->expires - margin_ <= std::chrono::system_clock::now()) cur_.reset();
  if (!cur_) cur_ = resolve_credentials(env_);
  return *cur_;
}

void CredentialCache::invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  cur_.reset();
}

}  // namespace segscale::storage
