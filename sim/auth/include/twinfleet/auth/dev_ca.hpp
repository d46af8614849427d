// A development certificate authority: everything the local hub and simulated devices need for
// TLS on loopback, generated in-process with OpenSSL (EC P-256 keys, SHA-256 signatures).
//
// Files written into the chosen folder:
//   ca.pem, ca.key              the CA (reused when both already exist there)
//   server.pem, server.key      CN=localhost; SANs DNS:localhost, IP:127.0.0.1, IP:::1 + extras
//   client-<name>.pem/.key      one per client common name (the Azure device id or AWS thing)
// Keys are unencrypted PKCS#8 PEM with mode 0600. Not for production use.
#pragma once

#include <twinfleet/auth/error.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::auth {

struct dev_ca_options {
  std::filesystem::path directory;                // created when missing
  std::vector<std::string> extra_server_names;    // DNS names or IP addresses (v4 or v6)
  std::vector<std::string> client_common_names;   // one client certificate each
  std::chrono::days validity{365};                // of the server and client certificates
  std::chrono::days ca_validity{3650};
  std::string ca_common_name = "twinfleet development CA";
  bool reuse_existing_ca = true;  // keep ca.pem/ca.key when present, so old clients stay trusted
};

struct written_certificate {
  std::string common_name;
  std::filesystem::path certificate_file;
  std::filesystem::path key_file;
  std::string sha1_thumbprint;    // upper-case hex, as Azure shows it
  std::string sha256_thumbprint;
};

struct dev_ca_result {
  written_certificate ca;
  bool ca_reused = false;
  written_certificate server;
  std::vector<std::string> server_names;  // every SAN of the server certificate, in order
  std::vector<written_certificate> clients;
};

// Writes the CA, the server certificate and the client certificates; blocks on file I/O.
// Errors: auth_errc::invalid_name (a client CN that is empty, over 64 bytes or holds control
// characters, two CNs mapping to the same file name, a server name that is neither a DNS
// name nor an IP address), auth_errc::bad_certificate (an existing ca.pem/ca.key that does
// not load or does not match), and system errors from creating the folder or writing files.
// Validation happens before anything is written. Not safe to run twice at once on one folder.
[[nodiscard]] result<dev_ca_result> write_dev_ca(const dev_ca_options& options);

// True for a name write_dev_ca() accepts as an extra server name: an IPv4 or IPv6 address, or
// a DNS name (letters, digits, inner hyphens per label, optional leading "*.", the last label
// not all digits).
[[nodiscard]] bool is_valid_server_name(std::string_view name);

// True for a name write_dev_ca() accepts as a client common name: 1 to 64 bytes of valid
// UTF-8 without control characters.
[[nodiscard]] bool is_valid_client_common_name(std::string_view common_name);

// The file-name part used for a client CN: letters, digits, '-', '_' and '.' kept, anything
// else replaced by '_' ("dev/1" → "dev_1").
[[nodiscard]] std::string client_file_stem(std::string_view common_name);

}  // namespace twinfleet::auth
