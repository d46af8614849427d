// The development CA and the TLS contexts: certificates that verify with OpenSSL, and real
// handshakes over 127.0.0.1 with and without acceptable client certificates.
#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/openssl_ptr.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/auth/x509.hpp>

#include "test_data.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include "catch_printers.hpp"

#include <catch2/catch.hpp>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>

namespace auth = twinfleet::auth;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace fs = std::filesystem;
using auth::auth_errc;
using twinfleet::test::temp_dir;
using namespace std::chrono_literals;



namespace {

auth::x509_ptr load_x509(const fs::path& file) {
  auth::bio_ptr bio{BIO_new_file(file.c_str(), "r")};
  REQUIRE(bio);
  auth::x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
  REQUIRE(cert);
  return cert;
}

auth::evp_pkey_ptr load_key(const fs::path& file) {
  auth::bio_ptr bio{BIO_new_file(file.c_str(), "r")};
  REQUIRE(bio);
  auth::evp_pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  REQUIRE(key);
  return key;
}

// X509_verify_cert of `leaf` against `ca` alone, for the given purpose (server or client).
bool chain_verifies(const fs::path& leaf_file, const fs::path& ca_file, int purpose) {
  const auto leaf = load_x509(leaf_file);
  const auto ca = load_x509(ca_file);
  auth::x509_store_ptr store{X509_STORE_new()};
  REQUIRE(X509_STORE_add_cert(store.get(), ca.get()) == 1);
  auth::x509_store_ctx_ptr ctx{X509_STORE_CTX_new()};
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) == 1);
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose) == 1);
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

std::string file_digest(const fs::path& cert_file, const EVP_MD* md) {
  const auto cert = load_x509(cert_file);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  REQUIRE(len > 0);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  REQUIRE(EVP_Digest(der, static_cast<std::size_t>(len), out, &out_len, md, nullptr) == 1);
  OPENSSL_free(der);
  return auth::hex_encode(std::string_view(reinterpret_cast<const char*>(out), out_len), auth::hex_case::upper);
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

auth::dev_ca_result make_ca(const fs::path& dir, std::vector<std::string> clients = {"device-1"},
                            std::vector<std::string> extra_names = {}) {
  auth::dev_ca_options o;
  o.directory = dir;
  o.client_common_names = std::move(clients);
  o.extra_server_names = std::move(extra_names);
  auto r = auth::write_dev_ca(o);
  REQUIRE(r);
  return std::move(*r);
}

ssl::context server_context(const auth::dev_ca_result& ca, auth::client_certificate_mode mode) {
  auth::tls_server_config config;
  config.certificate_chain_file = ca.server.certificate_file;
  config.private_key_file = ca.server.key_file;
  config.client_ca_file = ca.ca.certificate_file;
  config.client_certificates = mode;
  auto ctx = auth::make_tls_server_context(config);
  REQUIRE(ctx);
  return std::move(*ctx);
}

ssl::context client_context(const fs::path& trusted_ca, const auth::written_certificate* identity,
                            std::vector<std::string> alpn = {}) {
  auth::tls_client_config config;
  config.ca_file = trusted_ca;
  if (identity != nullptr) {
    config.certificate_chain_file = identity->certificate_file;
    config.private_key_file = identity->key_file;
  }
  config.alpn_protocols = std::move(alpn);
  auto ctx = auth::make_tls_client_context(config);
  REQUIRE(ctx);
  return std::move(*ctx);
}

struct handshake_outcome {
  bool finished = false;  // every operation completed before the deadline
  boost::system::error_code server;
  boost::system::error_code client;
  boost::system::error_code client_read;
  std::string client_received;
  std::string server_alpn;
  std::string client_alpn;
  std::optional<auth::peer_certificate> server_saw;  // the client's certificate
  std::optional<auth::peer_certificate> client_saw;  // the server's certificate
};

// One TLS connection over 127.0.0.1 on an ephemeral port, single-threaded and bounded: the
// server greets a client that completed its handshake with "ok"; the client reads two bytes.
// Under TLS 1.3 a client finishes its handshake before the server has judged its certificate,
// so a refused client learns it on that read.
handshake_outcome run_handshake(ssl::context& server_ctx, ssl::context& client_ctx, std::string_view host = "localhost") {
  handshake_outcome out;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  ssl::stream<asio::ip::tcp::socket> server(io, server_ctx);
  ssl::stream<asio::ip::tcp::socket> client(io, client_ctx);
  REQUIRE(auth::set_tls_server_name(client.native_handle(), host));
  static constexpr std::string_view greeting = "ok";
  std::array<char, 2> buffer{};

  acceptor.async_accept(server.lowest_layer(), [&](boost::system::error_code ec) {
    if (ec) {
      out.server = ec;
      return;
    }
    server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code hec) {
      out.server = hec;
      if (hec) {
        server.lowest_layer().close();
        return;
      }
      out.server_saw = auth::get_peer_certificate(server.native_handle());
      out.server_alpn = auth::negotiated_alpn(server.native_handle());
      asio::async_write(server, asio::buffer(greeting.data(), greeting.size()),
                        [&](boost::system::error_code, std::size_t) {});
    });
  });
  client.lowest_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      out.client = ec;
      return;
    }
    client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code hec) {
      out.client = hec;
      if (hec) return;
      out.client_saw = auth::get_peer_certificate(client.native_handle());
      out.client_alpn = auth::negotiated_alpn(client.native_handle());
      asio::async_read(client, asio::buffer(buffer), [&](boost::system::error_code rec, std::size_t n) {
        out.client_read = rec;
        out.client_received.assign(buffer.data(), n);
      });
    });
  });
  io.run_for(10s);
  out.finished = io.stopped();
  return out;
}

unsigned long ssl_reason(const boost::system::error_code& ec) {
  REQUIRE(ec.category() == asio::error::get_ssl_category());
  return ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
}

}  // namespace

// --- the development CA ------------------------------------------------------------------------

TEST_CASE("write_dev_ca writes a CA, a server and clients whose chains verify", "[auth][tls][dev_ca]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path() / "certs", {"device-1", "thing/2"}, {"hub.twinfleet.test", "10.1.2.3"});
  const fs::path base = dir.path() / "certs";

  CHECK_FALSE(ca.ca_reused);
  CHECK(ca.ca.certificate_file == base / "ca.pem");
  CHECK(ca.ca.key_file == base / "ca.key");
  CHECK(ca.server.certificate_file == base / "server.pem");
  CHECK(ca.server.key_file == base / "server.key");
  REQUIRE(ca.clients.size() == 2);
  CHECK(ca.clients[0].certificate_file == base / "client-device-1.pem");
  CHECK(ca.clients[1].certificate_file == base / "client-thing_2.pem");
  CHECK(ca.clients[1].key_file == base / "client-thing_2.key");
  for (const auto* w : {&ca.ca, &ca.server, &ca.clients[0], &ca.clients[1]}) {
    CAPTURE(w->certificate_file);
    CHECK(file_mode(w->key_file) == 0600);
    CHECK(file_mode(w->certificate_file) == 0644);
    const auto key = load_key(w->key_file);
    CHECK(EVP_PKEY_is_a(key.get(), "EC") == 1);
    char group[64] = {};
    REQUIRE(EVP_PKEY_get_group_name(key.get(), group, sizeof group, nullptr) == 1);
    CHECK(std::string(group) == "prime256v1");
    const auto cert = load_x509(w->certificate_file);
    CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
    CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
    CHECK(w->sha1_thumbprint == file_digest(w->certificate_file, EVP_sha1()));
    CHECK(w->sha256_thumbprint == file_digest(w->certificate_file, EVP_sha256()));
    CHECK(w->sha1_thumbprint.size() == 40);
    CHECK(w->sha256_thumbprint.size() == 64);
  }

  CHECK(chain_verifies(ca.server.certificate_file, ca.ca.certificate_file, X509_PURPOSE_SSL_SERVER));
  CHECK(chain_verifies(ca.clients[0].certificate_file, ca.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));
  CHECK(chain_verifies(ca.clients[1].certificate_file, ca.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));
  // Extended key usage keeps each certificate to its role.
  CHECK_FALSE(chain_verifies(ca.clients[0].certificate_file, ca.ca.certificate_file, X509_PURPOSE_SSL_SERVER));
  CHECK_FALSE(chain_verifies(ca.server.certificate_file, ca.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));

  const auto ca_info = auth::read_certificate_file(ca.ca.certificate_file).value();
  CHECK(ca_info.is_ca);
  CHECK(ca_info.subject_common_name == "twinfleet development CA");
  CHECK(ca_info.issuer_common_name == "twinfleet development CA");

  const auto server = auth::read_certificate_file(ca.server.certificate_file).value();
  CHECK_FALSE(server.is_ca);
  CHECK(server.subject_common_name == "localhost");
  CHECK(server.issuer_common_name == "twinfleet development CA");
  CHECK(server.dns_names == std::vector<std::string>{"localhost", "hub.twinfleet.test"});
  CHECK(server.ip_addresses == std::vector<std::string>{"127.0.0.1", "::1", "10.1.2.3"});
  CHECK(ca.server_names == std::vector<std::string>{"localhost", "127.0.0.1", "::1", "hub.twinfleet.test", "10.1.2.3"});
  const auto now = std::chrono::system_clock::now();
  CHECK(server.not_before < now);
  CHECK(server.not_after > now + std::chrono::days{364});
  CHECK(server.not_after < now + std::chrono::days{366});

  const auto client = auth::read_certificate_file(ca.clients[1].certificate_file).value();
  CHECK(client.subject_common_name == "thing/2");
  CHECK(ca.clients[1].common_name == "thing/2");
  CHECK(client.sha1_thumbprint == ca.clients[1].sha1_thumbprint);
}

TEST_CASE("a second run reuses the CA, so earlier clients stay trusted", "[auth][tls][dev_ca]") {
  const temp_dir dir;
  const auto first = make_ca(dir.path(), {"device-1"});
  // A key rewritten over a world-readable file must not stay world-readable.
  fs::permissions(first.server.key_file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                             fs::perms::others_read);
  REQUIRE(file_mode(first.server.key_file) == 0644);
  const auto second = make_ca(dir.path(), {"device-2"});
  CHECK(file_mode(second.server.key_file) == 0600);
  CHECK(second.ca_reused);
  CHECK(second.ca.sha256_thumbprint == first.ca.sha256_thumbprint);
  CHECK(second.ca.common_name == "twinfleet development CA");
  CHECK(chain_verifies(first.clients[0].certificate_file, second.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));
  CHECK(chain_verifies(second.clients[0].certificate_file, second.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));

  auth::dev_ca_options fresh;
  fresh.directory = dir.path();
  fresh.reuse_existing_ca = false;
  const auto third = auth::write_dev_ca(fresh).value();
  CHECK_FALSE(third.ca_reused);
  CHECK(third.ca.sha256_thumbprint != first.ca.sha256_thumbprint);
  CHECK_FALSE(chain_verifies(first.clients[0].certificate_file, third.ca.certificate_file, X509_PURPOSE_SSL_CLIENT));
}

TEST_CASE("bad names are refused before anything is written", "[auth][tls][dev_ca]") {
  const temp_dir dir;
  auto attempt = [&](std::vector<std::string> clients, std::vector<std::string> names) {
    auth::dev_ca_options o;
    o.directory = dir.path() / "out";
    o.client_common_names = std::move(clients);
    o.extra_server_names = std::move(names);
    const auto r = auth::write_dev_ca(o);
    REQUIRE_FALSE(r);
    CHECK_FALSE(fs::exists(dir.path() / "out"));
    return r.error();
  };
  CHECK(attempt({""}, {}) == auth_errc::invalid_name);
  CHECK(attempt({std::string(65, 'a')}, {}) == auth_errc::invalid_name);
  CHECK(attempt({"line\nbreak"}, {}) == auth_errc::invalid_name);
  CHECK(attempt({"bad\xff utf8"}, {}) == auth_errc::invalid_name);
  CHECK(attempt({"\xed\xa0\x80"}, {}) == auth_errc::invalid_name);  // a UTF-16 surrogate
  CHECK(attempt({"a/b", "a_b"}, {}) == auth_errc::invalid_name);     // same file name
  CHECK(attempt({"dup", "dup"}, {}) == auth_errc::invalid_name);
  CHECK(attempt({}, {"bad,name"}) == auth_errc::invalid_name);
  CHECK(attempt({}, {"DNS:x"}) == auth_errc::invalid_name);
  CHECK(attempt({}, {"-leading.example"}) == auth_errc::invalid_name);
  CHECK(attempt({}, {""}) == auth_errc::invalid_name);
  CHECK(attempt({}, {"999.1.1.1"}) == auth_errc::invalid_name);

  // Unicode common names and wildcard server names are fine.
  auth::dev_ca_options ok;
  ok.directory = dir.path() / "ok";
  ok.client_common_names = {"g\xc3\xa9rard-\xe1\x88\xb4"};
  ok.extra_server_names = {"*.twinfleet.test", "fe80::1"};
  const auto r = auth::write_dev_ca(ok);
  REQUIRE(r);
  CHECK(auth::read_certificate_file(r->clients[0].certificate_file).value().subject_common_name ==
        "g\xc3\xa9rard-\xe1\x88\xb4");
  CHECK(r->clients[0].certificate_file.filename() == "client-g__rard-___.pem");
}

TEST_CASE("a broken existing CA is reported, not replaced", "[auth][tls][dev_ca]") {
  const temp_dir dir;
  std::ofstream(dir.path() / "ca.pem") << "not a certificate";
  std::ofstream(dir.path() / "ca.key") << "not a key";
  auth::dev_ca_options o;
  o.directory = dir.path();
  const auto r = auth::write_dev_ca(o);
  REQUIRE_FALSE(r);
  CHECK(r.error() == auth_errc::bad_certificate);
  CHECK(twinfleet::test::read_file(dir.path() / "ca.pem") == "not a certificate");
  CHECK_FALSE(fs::exists(dir.path() / "server.pem"));
}

TEST_CASE("writing into a path that is a file fails with a system error", "[auth][tls][dev_ca]") {
  const temp_dir dir;
  std::ofstream(dir.path() / "file") << "x";
  auth::dev_ca_options o;
  o.directory = dir.path() / "file";
  const auto r = auth::write_dev_ca(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().category() != auth::auth_category());
}

TEST_CASE("certificate files that are missing or not PEM are reported", "[auth][tls]") {
  const temp_dir dir;
  CHECK(auth::read_certificate_file(dir.path() / "absent.pem").error() ==
        boost::system::errc::no_such_file_or_directory);
  CHECK(auth::parse_certificate_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").error() ==
        auth_errc::bad_certificate);
  CHECK(auth::parse_certificate_pem("").error() == auth_errc::bad_certificate);
}

// --- contexts ------------------------------------------------------------------------------------

TEST_CASE("TLS contexts report missing, broken and mismatched files", "[auth][tls]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path());
  std::ofstream(dir.path() / "garbage.pem") << "garbage";

  auth::tls_server_config good;
  good.certificate_chain_file = ca.server.certificate_file;
  good.private_key_file = ca.server.key_file;
  CHECK(auth::make_tls_server_context(good));

  auto missing = good;
  missing.private_key_file = dir.path() / "absent.key";
  CHECK(auth::make_tls_server_context(missing).error() == boost::system::errc::no_such_file_or_directory);

  auto mismatched = good;
  mismatched.private_key_file = ca.clients[0].key_file;
  CHECK(auth::make_tls_server_context(mismatched).error() == auth_errc::bad_certificate);

  auto broken = good;
  broken.certificate_chain_file = dir.path() / "garbage.pem";
  CHECK(auth::make_tls_server_context(broken).error() == auth_errc::bad_certificate);

  auto broken_ca = good;
  broken_ca.client_ca_file = dir.path() / "garbage.pem";
  broken_ca.client_certificates = auth::client_certificate_mode::require;
  CHECK(auth::make_tls_server_context(broken_ca).error() == auth_errc::bad_certificate);

  auto no_ca = good;
  no_ca.client_certificates = auth::client_certificate_mode::require;
  CHECK(auth::make_tls_server_context(no_ca).error() == boost::system::errc::invalid_argument);

  auth::tls_client_config client;
  client.ca_file = dir.path() / "absent.pem";
  CHECK(auth::make_tls_client_context(client).error() == boost::system::errc::no_such_file_or_directory);
  client.ca_file = ca.ca.certificate_file;
  client.alpn_protocols = {""};
  CHECK(auth::make_tls_client_context(client).error() == boost::system::errc::invalid_argument);
  client.alpn_protocols = {"x-amzn-mqtt-ca"};
  client.certificate_chain_file = ca.clients[0].certificate_file;
  client.private_key_file = ca.server.key_file;
  CHECK(auth::make_tls_client_context(client).error() == auth_errc::bad_certificate);
  client.private_key_file = ca.clients[0].key_file;
  CHECK(auth::make_tls_client_context(client));
}

TEST_CASE("the server ALPN list holds the AWS IoT names", "[auth][tls]") {
  const auto names = auth::server_alpn_protocols();
  CHECK(std::find(names.begin(), names.end(), "x-amzn-mqtt-ca") != names.end());
  CHECK(std::find(names.begin(), names.end(), "x-amzn-http-ca") != names.end());
}

// --- handshakes on loopback --------------------------------------------------------------------

TEST_CASE("mutual TLS succeeds with a client certificate from the CA", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path(), {"device-1"});
  auto server_ctx = server_context(ca, auth::client_certificate_mode::require);
  auto client_ctx = client_context(ca.ca.certificate_file, &ca.clients[0], {"x-amzn-mqtt-ca"});

  const auto out = run_handshake(server_ctx, client_ctx);
  REQUIRE(out.finished);
  CHECK_FALSE(out.server);
  CHECK_FALSE(out.client);
  CHECK_FALSE(out.client_read);
  CHECK(out.client_received == "ok");
  CHECK(out.server_alpn == "x-amzn-mqtt-ca");
  CHECK(out.client_alpn == "x-amzn-mqtt-ca");
  REQUIRE(out.server_saw);
  CHECK(out.server_saw->verified);
  CHECK(out.server_saw->info.subject_common_name == "device-1");
  CHECK(out.server_saw->info.sha1_thumbprint == ca.clients[0].sha1_thumbprint);
  REQUIRE(out.client_saw);
  CHECK(out.client_saw->verified);
  CHECK(out.client_saw->info.subject_common_name == "localhost");
}

TEST_CASE("mutual TLS fails with a client certificate from another CA", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path() / "trusted", {"device-1"});
  const auto stranger = make_ca(dir.path() / "stranger", {"device-1"});
  auto server_ctx = server_context(ca, auth::client_certificate_mode::require);
  auto client_ctx = client_context(ca.ca.certificate_file, &stranger.clients[0]);

  const auto out = run_handshake(server_ctx, client_ctx);
  REQUIRE(out.finished);
  REQUIRE(out.server);
  CHECK(ssl_reason(out.server) == SSL_R_CERTIFICATE_VERIFY_FAILED);
  // Whether the client fails in its handshake (TLS 1.2) or on its first read (TLS 1.3), it never
  // gets the server's greeting.
  CHECK((out.client || out.client_read));
  CHECK(out.client_received != "ok");
}

TEST_CASE("a required client certificate cannot be skipped", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path());
  auto server_ctx = server_context(ca, auth::client_certificate_mode::require);
  auto client_ctx = client_context(ca.ca.certificate_file, nullptr);
  const auto out = run_handshake(server_ctx, client_ctx);
  REQUIRE(out.finished);
  REQUIRE(out.server);
  CHECK(ssl_reason(out.server) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
  CHECK(out.client_received != "ok");
}

TEST_CASE("request mode asks for a certificate but lets the hub judge it", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path() / "trusted");
  const auto stranger = make_ca(dir.path() / "stranger", {"self-signed-ish"});
  auto server_ctx = server_context(ca, auth::client_certificate_mode::request);

  SECTION("no certificate") {
    auto client_ctx = client_context(ca.ca.certificate_file, nullptr);
    const auto out = run_handshake(server_ctx, client_ctx);
    REQUIRE(out.finished);
    CHECK_FALSE(out.server);
    CHECK(out.client_received == "ok");
    CHECK_FALSE(out.server_saw);
  }
  SECTION("an untrusted certificate is accepted and reported as unverified") {
    auto client_ctx = client_context(ca.ca.certificate_file, &stranger.clients[0]);
    const auto out = run_handshake(server_ctx, client_ctx);
    REQUIRE(out.finished);
    CHECK_FALSE(out.server);
    CHECK(out.client_received == "ok");
    REQUIRE(out.server_saw);
    CHECK_FALSE(out.server_saw->verified);
    CHECK_FALSE(out.server_saw->verify_error.empty());
    CHECK(out.server_saw->info.subject_common_name == "self-signed-ish");
    CHECK(out.server_saw->info.sha1_thumbprint == stranger.clients[0].sha1_thumbprint);
  }
  SECTION("a trusted certificate is reported as verified") {
    auto client_ctx = client_context(ca.ca.certificate_file, &ca.clients[0]);
    const auto out = run_handshake(server_ctx, client_ctx);
    REQUIRE(out.finished);
    REQUIRE(out.server_saw);
    CHECK(out.server_saw->verified);
  }
}

TEST_CASE("verify_if_presented accepts no certificate but refuses a bad one", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path() / "trusted");
  const auto stranger = make_ca(dir.path() / "stranger");
  auto server_ctx = server_context(ca, auth::client_certificate_mode::verify_if_presented);

  auto anonymous = client_context(ca.ca.certificate_file, nullptr);
  const auto ok = run_handshake(server_ctx, anonymous);
  REQUIRE(ok.finished);
  CHECK_FALSE(ok.server);
  CHECK(ok.client_received == "ok");

  auto untrusted = client_context(ca.ca.certificate_file, &stranger.clients[0]);
  const auto refused = run_handshake(server_ctx, untrusted);
  REQUIRE(refused.finished);
  REQUIRE(refused.server);
  CHECK(ssl_reason(refused.server) == SSL_R_CERTIFICATE_VERIFY_FAILED);
}

TEST_CASE("unknown ALPN names never fail the handshake", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path());
  auto server_ctx = server_context(ca, auth::client_certificate_mode::none);

  auto unknown = client_context(ca.ca.certificate_file, nullptr, {"h2", "foo"});
  const auto none = run_handshake(server_ctx, unknown);
  REQUIRE(none.finished);
  CHECK_FALSE(none.server);
  CHECK(none.client_received == "ok");
  CHECK(none.server_alpn.empty());

  auto mixed = client_context(ca.ca.certificate_file, nullptr, {"foo", "x-amzn-mqtt-ca"});
  const auto picked = run_handshake(server_ctx, mixed);
  REQUIRE(picked.finished);
  CHECK(picked.server_alpn == "x-amzn-mqtt-ca");
}

TEST_CASE("the client checks the server's name, DNS or IP", "[auth][tls][loopback]") {
  const temp_dir dir;
  const auto ca = make_ca(dir.path());
  auto server_ctx = server_context(ca, auth::client_certificate_mode::none);
  auto client_ctx = client_context(ca.ca.certificate_file, nullptr);

  const auto by_ip = run_handshake(server_ctx, client_ctx, "127.0.0.1");
  REQUIRE(by_ip.finished);
  CHECK_FALSE(by_ip.client);
  CHECK(by_ip.client_received == "ok");

  const auto wrong = run_handshake(server_ctx, client_ctx, "wrong.example");
  REQUIRE(wrong.finished);
  REQUIRE(wrong.client);
  CHECK(ssl_reason(wrong.client) == SSL_R_CERTIFICATE_VERIFY_FAILED);

  const auto wrong_ip = run_handshake(server_ctx, client_ctx, "127.0.0.2");
  REQUIRE(wrong_ip.finished);
  REQUIRE(wrong_ip.client);
  CHECK(ssl_reason(wrong_ip.client) == SSL_R_CERTIFICATE_VERIFY_FAILED);

  // And a client trusting another CA refuses the server altogether.
  const auto stranger = make_ca(dir.path() / "stranger");
  auto distrustful = client_context(stranger.ca.certificate_file, nullptr);
  const auto refused = run_handshake(server_ctx, distrustful);
  REQUIRE(refused.finished);
  REQUIRE(refused.client);
  CHECK(ssl_reason(refused.client) == SSL_R_CERTIFICATE_VERIFY_FAILED);
}
