// What the hub and the CLI need to know about an X.509 certificate: names, validity and the
// thumbprints Azure IoT Hub registers for self-signed devices (PROTOCOLS.md A10).
// All functions are pure and thread-safe.
#pragma once

#include <twinfleet/auth/error.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

struct x509_st;  // OpenSSL's X509, so that this header needs no OpenSSL include

namespace twinfleet::auth {

struct certificate_info {
  std::string subject_common_name;  // empty when the subject has no CN
  std::string issuer_common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text ("127.0.0.1", "::1")
  std::string sha1_thumbprint;    // SHA-1 of the DER encoding, upper-case hex, as Azure shows it
  std::string sha256_thumbprint;  // SHA-256 of the DER encoding, upper-case hex
  std::chrono::sys_seconds not_before{};
  std::chrono::sys_seconds not_after{};
  bool is_ca = false;  // basicConstraints CA:TRUE
};

// Describes a certificate OpenSSL already holds (for example a TLS peer's).
[[nodiscard]] certificate_info describe_certificate(const x509_st& certificate);

// The first certificate of a PEM text or file.
// Errors: auth_errc::bad_certificate; for files also the system error of opening it.
[[nodiscard]] result<certificate_info> parse_certificate_pem(std::string_view pem);
[[nodiscard]] result<certificate_info> read_certificate_file(const std::filesystem::path& pem_file);

}  // namespace twinfleet::auth
