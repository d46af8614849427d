#include <twinfleet/auth/tls.hpp>

#include <twinfleet/auth/openssl_ptr.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>

namespace twinfleet::auth {

namespace {

namespace ssl = boost::asio::ssl;

// The ALPN names AWS IoT endpoints answer (MQTT and HTTPS with client certificates on 443),
// plus the plain ones a generic MQTT or HTTP client might offer.
constexpr std::array<std::string_view, 4> accepted_alpn{"x-amzn-mqtt-ca", "x-amzn-http-ca", "mqtt", "http/1.1"};

constexpr unsigned char session_id_context[] = "twinfleet";

// Picks the first name in the client's list that the server accepts. When there is none it
// answers NOACK, which continues the handshake without ALPN: returning ALERT_FATAL would send
// no_application_protocol and aws-crt clients would never connect.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void* /*arg*/) {
  unsigned int i = 0;
  while (i < in_len) {
    const unsigned int len = in[i];
    if (len == 0 || i + 1 + len > in_len) break;  // malformed list: ignore the rest
    const std::string_view offered(reinterpret_cast<const char*>(in + i + 1), len);
    if (std::find(accepted_alpn.begin(), accepted_alpn.end(), offered) != accepted_alpn.end()) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// `request` mode: accept any certificate during the handshake; SSL_get_verify_result() still
// records what verification found, for the hub to judge (Azure thumbprint devices are
// self-signed and would never chain).
int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

boost::system::error_code missing_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return {};
  return boost::system::errc::make_error_code(boost::system::errc::no_such_file_or_directory);
}

result<void> load_identity(ssl::context& ctx, const std::filesystem::path& chain, const std::filesystem::path& key) {
  if (auto ec = missing_file(chain)) return ec;
  if (auto ec = missing_file(key)) return ec;
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(chain.string(), ec);
  if (ec) return auth_errc::bad_certificate;
  // OpenSSL checks here that the key belongs to the certificate just loaded.
  ctx.use_private_key_file(key.string(), ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(ctx.native_handle()) != 1) return auth_errc::bad_certificate;
  return {};
}

void set_common_options(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  // Both clouds require TLS 1.2 or later (PROTOCOLS.md A10).
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
}

}  // namespace

result<ssl::context> make_tls_server_context(const tls_server_config& config) {
  ssl::context ctx{ssl::context::tls_server};
  set_common_options(ctx);
  if (auto loaded = load_identity(ctx, config.certificate_chain_file, config.private_key_file); !loaded) {
    ERR_clear_error();
    return loaded.error();
  }
  SSL_CTX* native = ctx.native_handle();

  const bool verifying = config.client_certificates == client_certificate_mode::verify_if_presented ||
                         config.client_certificates == client_certificate_mode::require;
  if (verifying && config.client_ca_file.empty()) {
    return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
  }
  if (!config.client_ca_file.empty()) {
    if (auto ec = missing_file(config.client_ca_file)) return ec;
    boost::system::error_code ec;
    ctx.load_verify_file(config.client_ca_file.string(), ec);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
    if (ec || names == nullptr) {
      ERR_clear_error();
      return auth_errc::bad_certificate;
    }
    // The CertificateRequest names the acceptable CAs, so a client holding several
    // certificates can pick the right one.
    SSL_CTX_set_client_CA_list(native, names);
  }

  switch (config.client_certificates) {
    case client_certificate_mode::none:
      SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
      break;
    case client_certificate_mode::request:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_certificate);
      break;
    case client_certificate_mode::verify_if_presented:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
      break;
    case client_certificate_mode::require:
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // Without a session id context OpenSSL refuses to resume sessions of verified clients.
  SSL_CTX_set_session_id_context(native, session_id_context, sizeof session_id_context - 1);
  if (config.accept_alpn) SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  return ctx;
}

result<ssl::context> make_tls_client_context(const tls_client_config& config) {
  ssl::context ctx{ssl::context::tls_client};
  set_common_options(ctx);
  boost::system::error_code ec;
  if (config.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    if (auto missing = missing_file(config.ca_file)) return missing;
    ctx.load_verify_file(config.ca_file.string(), ec);
  }
  if (ec) {
    ERR_clear_error();
    return auth_errc::bad_certificate;
  }
  if (!config.certificate_chain_file.empty() || !config.private_key_file.empty()) {
    if (auto loaded = load_identity(ctx, config.certificate_chain_file, config.private_key_file); !loaded) {
      ERR_clear_error();
      return loaded.error();
    }
  }
  SSL_CTX_set_verify(ctx.native_handle(), config.verify_server ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);

  if (!config.alpn_protocols.empty()) {
    std::string wire;
    for (const auto& name : config.alpn_protocols) {
      if (name.empty() || name.size() > 255) {
        return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      }
      wire += static_cast<char>(name.size());
      wire += name;
    }
    // Unlike nearly every other OpenSSL call, this one returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx.native_handle(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
    }
  }
  return ctx;
}

result<void> set_tls_server_name(SSL* ssl, std::string_view host) {
  const std::string name(host);
  unsigned char ip[16];
  const bool is_ip = inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
      ERR_clear_error();
      return auth_errc::invalid_name;
    }
    return {};
  }
  // SSL_set_tlsext_host_name is a macro with a C cast; this is what it expands to.
  if (name.empty() || SSL_set1_host(ssl, name.c_str()) != 1 ||
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1) {
    ERR_clear_error();
    return auth_errc::invalid_name;
  }
  return {};
}

std::span<const std::string_view> server_alpn_protocols() noexcept { return accepted_alpn; }

std::string negotiated_alpn(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data == nullptr ? std::string{} : std::string(reinterpret_cast<const char*>(data), len);
}

std::optional<peer_certificate> get_peer_certificate(const SSL* ssl) {
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  peer_certificate out;
  out.info = describe_certificate(*cert);
  const long verify = SSL_get_verify_result(ssl);
  out.verified = verify == X509_V_OK;
  if (!out.verified) out.verify_error = X509_verify_cert_error_string(verify);
  return out;
}

}  // namespace twinfleet::auth
