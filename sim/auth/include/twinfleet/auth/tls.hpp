// TLS contexts for the hub (server) and the simulated devices (client), from PEM files.
//
// One context serves many connections: build it once at start-up and share it (DESIGN.md:
// TLS state is the memory cost). A finished context may be used from any thread to create
// streams; do not change it while streams are being created from it.
//
// This is the one auth header that includes Boost.Asio's SSL context.
#pragma once

#include <twinfleet/auth/error.hpp>
#include <twinfleet/auth/x509.hpp>

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::auth {

// How the server treats client certificates.
enum class client_certificate_mode {
  none,                 // no CertificateRequest
  request,              // ask, accept any certificate or none; check peer_certificate() afterwards
                        // (Azure thumbprint devices: self-signed certificates)
  verify_if_presented,  // ask; a presented certificate must chain to the client CA
  require,              // ask; the handshake fails without a certificate chaining to the client CA
};

struct tls_server_config {
  std::filesystem::path certificate_chain_file;  // leaf first, then intermediates
  std::filesystem::path private_key_file;
  std::filesystem::path client_ca_file;          // trust anchors for client certificates; may be empty
  client_certificate_mode client_certificates = client_certificate_mode::none;
  // Answer the ALPN names AWS IoT clients offer (see server_alpn_protocols()). A client
  // offering none of them still completes the handshake, without ALPN: aws-crt offers
  // x-amzn-mqtt-ca on every port, and a no_application_protocol alert would end it.
  bool accept_alpn = true;
};

// TLS 1.2 or later. Errors: errc::no_such_file_or_directory for a missing file,
// auth_errc::bad_certificate for PEM that does not load or a key that does not belong to the
// certificate, errc::invalid_argument for verify_if_presented or require without a
// client_ca_file. In `request` mode without a client CA no certificate ever verifies.
[[nodiscard]] result<boost::asio::ssl::context> make_tls_server_context(const tls_server_config& config);

struct tls_client_config {
  std::filesystem::path ca_file;                 // trust anchors for the server; empty: system default
  std::filesystem::path certificate_chain_file;  // client certificate; empty: none
  std::filesystem::path private_key_file;
  bool verify_server = true;
  std::vector<std::string> alpn_protocols;       // offered in order, e.g. {"x-amzn-mqtt-ca"}
};

// TLS 1.2 or later. Call set_tls_server_name() on each connection to check the server's name.
// Errors: as make_tls_server_context(); errc::invalid_argument for an ALPN name that is empty
// or longer than 255 bytes.
[[nodiscard]] result<boost::asio::ssl::context> make_tls_client_context(const tls_client_config& config);

// Per connection, before the handshake: sends SNI for a DNS name (not for an IP address,
// as RFC 6066 asks) and makes certificate verification check `host` against the server's
// SANs (DNS or IP). Errors: auth_errc::invalid_name when OpenSSL refuses the name.
[[nodiscard]] result<void> set_tls_server_name(SSL* ssl, std::string_view host);

// The ALPN names the server accepts when `accept_alpn` is set, in no particular preference:
// the client's order decides.
[[nodiscard]] std::span<const std::string_view> server_alpn_protocols() noexcept;

// The protocol ALPN settled on, or an empty string.
[[nodiscard]] std::string negotiated_alpn(const SSL* ssl);

// The peer's leaf certificate after a handshake, and whether it chained to a trust anchor.
struct peer_certificate {
  certificate_info info;
  bool verified = false;
  std::string verify_error;  // OpenSSL's reason when not verified
};

// nullopt when the peer sent no certificate.
[[nodiscard]] std::optional<peer_certificate> get_peer_certificate(const SSL* ssl);

}  // namespace twinfleet::auth
