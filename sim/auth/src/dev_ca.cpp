#include <twinfleet/auth/dev_ca.hpp>
#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/openssl_ptr.hpp>
#include <twinfleet/auth/x509.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

namespace twinfleet::auth {

namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// OpenSSL failing while building a certificate from valid inputs means no memory or a broken
// library: a bug-class failure, reported as an exception carrying OpenSSL's reason.
[[noreturn]] void throw_openssl(const char* what) {
  const unsigned long code = ERR_get_error();
  char reason[256] = "no OpenSSL error queued";
  if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  throw std::runtime_error(std::string("OpenSSL ") + what + " failed: " + reason);
}

void expect_one(int rc, const char* what) {
  if (rc != 1) throw_openssl(what);
}

template <class T>
T* expect_ptr(T* p, const char* what) {
  if (p == nullptr) throw_openssl(what);
  return p;
}

boost::system::error_code last_system_error() {
  return {errno, boost::system::system_category()};
}

std::string upper_hex_digest(const X509& certificate, const EVP_MD* md) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  expect_one(X509_digest(&certificate, md, buf, &len), "X509_digest");
  return hex_encode(std::string_view(reinterpret_cast<const char*>(buf), len), hex_case::upper);
}

std::chrono::sys_seconds to_sys_seconds(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  const std::chrono::year_month_day ymd{std::chrono::year{tm.tm_year + 1900},
                                        std::chrono::month{static_cast<unsigned>(tm.tm_mon + 1)},
                                        std::chrono::day{static_cast<unsigned>(tm.tm_mday)}};
  return std::chrono::sys_seconds{std::chrono::sys_days{ymd}} + std::chrono::hours{tm.tm_hour} +
         std::chrono::minutes{tm.tm_min} + seconds{tm.tm_sec};
}

std::string common_name_of(const X509_NAME* name) {
  if (name == nullptr) return {};
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string ip_to_text(const ASN1_OCTET_STRING* ip) {
  const int len = ASN1_STRING_length(ip);
  char text[INET6_ADDRSTRLEN] = {};
  const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
  if (family < 0 || inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) == nullptr) return {};
  return text;
}

std::string read_bio(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  if (!out.empty() && BIO_read(bio, out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size())) {
    throw_openssl("BIO_read");
  }
  return out;
}

std::string certificate_pem(X509* certificate) {
  bio_ptr bio{expect_ptr(BIO_new(BIO_s_mem()), "BIO_new")};
  expect_one(PEM_write_bio_X509(bio.get(), certificate), "PEM_write_bio_X509");
  return read_bio(bio.get());
}

std::string private_key_pem(EVP_PKEY* key) {
  bio_ptr bio{expect_ptr(BIO_new(BIO_s_mem()), "BIO_new")};
  expect_one(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
             "PEM_write_bio_PrivateKey");
  return read_bio(bio.get());
}

evp_pkey_ptr generate_p256_key() {
  evp_pkey_ctx_ptr ctx{expect_ptr(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), "EVP_PKEY_CTX_new_from_name")};
  expect_one(EVP_PKEY_keygen_init(ctx.get()), "EVP_PKEY_keygen_init");
  expect_one(EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256"), "EVP_PKEY_CTX_set_group_name");
  EVP_PKEY* key = nullptr;
  expect_one(EVP_PKEY_generate(ctx.get(), &key), "EVP_PKEY_generate");
  return evp_pkey_ptr{key};
}

struct extension {
  int nid;
  std::string value;
};

// issuer == nullptr makes a self-signed certificate.
x509_ptr make_certificate(const std::string& common_name, EVP_PKEY* subject_key, X509* issuer,
                          EVP_PKEY* issuer_key, const std::vector<extension>& extensions, seconds validity) {
  x509_ptr cert{expect_ptr(X509_new(), "X509_new")};
  expect_one(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");

  // 127 random bits: positive, unique enough that browsers and OpenSSL never see two
  // certificates from one CA with the same serial.
  bignum_ptr serial{expect_ptr(BN_new(), "BN_new")};
  expect_one(BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
  expect_ptr(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())), "BN_to_ASN1_INTEGER");

  // An hour back-dated, so a peer whose clock lags a little still accepts a fresh certificate.
  expect_ptr(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600), "X509_gmtime_adj");
  expect_ptr(X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validity.count())), "X509_gmtime_adj");

  X509_NAME* subject = X509_get_subject_name(cert.get());
  static constexpr unsigned char organisation[] = "twinfleet";
  expect_one(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, organisation, -1, -1, 0), "add O");
  expect_one(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                        reinterpret_cast<const unsigned char*>(common_name.data()),
                                        static_cast<int>(common_name.size()), -1, 0),
             "add CN");
  expect_one(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject), "X509_set_issuer_name");
  expect_one(X509_set_pubkey(cert.get(), subject_key), "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& ext : extensions) {
    x509_extension_ptr e{expect_ptr(X509V3_EXT_nconf_nid(nullptr, &ctx, ext.nid, ext.value.c_str()),
                                    "X509V3_EXT_nconf_nid")};
    expect_one(X509_add_ext(cert.get(), e.get(), -1), "X509_add_ext");
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) throw_openssl("X509_sign");
  return cert;
}

// Creates or truncates `path` with `mode`; an existing file gets `mode` too, so a key written
// over an old world-readable file does not stay readable.
boost::system::error_code write_file(const fs::path& path, std::string_view content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return last_system_error();
  boost::system::error_code ec;
  if (::fchmod(fd, mode) != 0) ec = last_system_error();
  while (!ec && !content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = last_system_error();
      break;
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::close(fd) != 0 && !ec) ec = last_system_error();
  return ec;
}

bool is_ip_address(std::string_view text) {
  const std::string name(text);
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Letters, digits and inner hyphens per label; a leading "*." wildcard. Anything else (a
// comma above all) could smuggle extra entries into the subjectAltName text OpenSSL parses.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (name.starts_with("*.")) name.remove_prefix(2);
  while (true) {
    const auto dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) {
      // "999.1.1.1" is a mistyped address, not a host name: no top-level label is all digits.
      return label.find_first_not_of("0123456789") != std::string_view::npos;
    }
    name.remove_prefix(dot + 1);
  }
}

// OpenSSL refuses invalid UTF-8 in a name entry; checking first turns that into invalid_name.
bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    char32_t cp = 0;
    if (lead < 0x80) {
      cp = lead;
    } else if ((lead & 0xe0) == 0xc0) {
      extra = 1;
      cp = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      extra = 2;
      cp = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      extra = 3;
      cp = lead & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    constexpr char32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < smallest[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

bool is_valid_common_name(std::string_view cn) {
  // 64 is the X.520 upper bound OpenSSL enforces for CN (in characters; bytes is stricter
  // but simpler to explain).
  if (cn.empty() || cn.size() > 64 || !is_valid_utf8(cn)) return false;
  return std::none_of(cn.begin(), cn.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

struct loaded_ca {
  x509_ptr certificate;
  evp_pkey_ptr key;
};

result<loaded_ca> load_ca(const fs::path& cert_file, const fs::path& key_file) {
  bio_ptr cert_bio{BIO_new_file(cert_file.c_str(), "r")};
  bio_ptr key_bio{BIO_new_file(key_file.c_str(), "r")};
  loaded_ca ca;
  if (cert_bio) ca.certificate.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (key_bio) ca.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  const bool usable = ca.certificate && ca.key && X509_check_private_key(ca.certificate.get(), ca.key.get()) == 1 &&
                      describe_certificate(*ca.certificate).is_ca;
  ERR_clear_error();
  if (!usable) return auth_errc::bad_certificate;
  return ca;
}

written_certificate describe_written(const std::string& cn, X509* cert, fs::path cert_file, fs::path key_file) {
  return {cn, std::move(cert_file), std::move(key_file), upper_hex_digest(*cert, EVP_sha1()),
          upper_hex_digest(*cert, EVP_sha256())};
}

}  // namespace

certificate_info describe_certificate(const x509_st& certificate) {
  certificate_info info;
  info.subject_common_name = common_name_of(X509_get_subject_name(&certificate));
  info.issuer_common_name = common_name_of(X509_get_issuer_name(&certificate));
  info.sha1_thumbprint = upper_hex_digest(certificate, EVP_sha1());
  info.sha256_thumbprint = upper_hex_digest(certificate, EVP_sha256());
  info.not_before = to_sys_seconds(X509_get0_notBefore(&certificate));
  info.not_after = to_sys_seconds(X509_get0_notAfter(&certificate));

  general_names_ptr names{
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&certificate, NID_subject_alt_name, nullptr, nullptr))};
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name->type == GEN_DNS) {
        const ASN1_IA5STRING* dns = name->d.dNSName;
        info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                    static_cast<std::size_t>(ASN1_STRING_length(dns)));
      } else if (name->type == GEN_IPADD) {
        info.ip_addresses.push_back(ip_to_text(name->d.iPAddress));
      }
    }
  }
  auto* constraints =
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(&certificate, NID_basic_constraints, nullptr, nullptr));
  if (constraints != nullptr) {
    info.is_ca = constraints->ca != 0;
    BASIC_CONSTRAINTS_free(constraints);
  }
  ERR_clear_error();  // X509_get_ext_d2i queues errors for absent extensions
  return info;
}

result<certificate_info> parse_certificate_pem(std::string_view pem) {
  bio_ptr bio{expect_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf")};
  x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
  if (!cert) {
    ERR_clear_error();
    return auth_errc::bad_certificate;
  }
  return describe_certificate(*cert);
}

result<certificate_info> read_certificate_file(const fs::path& pem_file) {
  std::ifstream in(pem_file, std::ios::binary);
  if (!in) return boost::system::errc::make_error_code(boost::system::errc::no_such_file_or_directory);
  const std::string pem{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return parse_certificate_pem(pem);
}

bool is_valid_server_name(std::string_view name) { return is_ip_address(name) || is_dns_name(name); }

bool is_valid_client_common_name(std::string_view common_name) { return is_valid_common_name(common_name); }

std::string client_file_stem(std::string_view common_name) {
  std::string stem(common_name);
  for (char& c : stem) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.';
    if (!keep) c = '_';
  }
  return stem;
}

result<dev_ca_result> write_dev_ca(const dev_ca_options& options) {
  // Validate everything first: a half-written folder is worse than none.
  std::vector<std::string> server_names{"localhost", "127.0.0.1", "::1"};
  for (const auto& name : options.extra_server_names) {
    if (!is_valid_server_name(name)) return auth_errc::invalid_name;
    if (std::find(server_names.begin(), server_names.end(), name) == server_names.end()) server_names.push_back(name);
  }
  std::set<std::string> stems;
  for (const auto& cn : options.client_common_names) {
    if (!is_valid_common_name(cn) || !stems.insert(client_file_stem(cn)).second) return auth_errc::invalid_name;
  }
  if (!is_valid_common_name(options.ca_common_name)) return auth_errc::invalid_name;

  std::error_code fs_ec;
  fs::create_directories(options.directory, fs_ec);
  if (fs_ec) return boost::system::error_code(fs_ec);

  dev_ca_result out;
  const fs::path ca_cert_file = options.directory / "ca.pem";
  const fs::path ca_key_file = options.directory / "ca.key";
  loaded_ca ca;
  if (options.reuse_existing_ca && fs::exists(ca_cert_file) && fs::exists(ca_key_file)) {
    auto loaded = load_ca(ca_cert_file, ca_key_file);
    if (!loaded) return loaded.error();
    ca = std::move(*loaded);
    out.ca_reused = true;
  } else {
    ca.key = generate_p256_key();
    ca.certificate = make_certificate(options.ca_common_name, ca.key.get(), nullptr, ca.key.get(),
                                      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                       {NID_subject_key_identifier, "hash"}},
                                      options.ca_validity);
    if (auto ec = write_file(ca_key_file, private_key_pem(ca.key.get()), 0600)) return ec;
    if (auto ec = write_file(ca_cert_file, certificate_pem(ca.certificate.get()), 0644)) return ec;
  }
  out.ca = describe_written(common_name_of(X509_get_subject_name(ca.certificate.get())), ca.certificate.get(),
                            ca_cert_file, ca_key_file);

  auto issue = [&](const std::string& cn, std::vector<extension> extensions, const fs::path& cert_file,
                   const fs::path& key_file) -> result<written_certificate> {
    extensions.push_back({NID_subject_key_identifier, "hash"});
    extensions.push_back({NID_authority_key_identifier, "keyid:always"});
    const evp_pkey_ptr key = generate_p256_key();
    const x509_ptr cert =
        make_certificate(cn, key.get(), ca.certificate.get(), ca.key.get(), extensions, options.validity);
    if (auto ec = write_file(key_file, private_key_pem(key.get()), 0600)) return ec;
    if (auto ec = write_file(cert_file, certificate_pem(cert.get()), 0644)) return ec;
    return describe_written(cn, cert.get(), cert_file, key_file);
  };

  std::string san;
  for (const auto& name : server_names) {
    if (!san.empty()) san += ',';
    san += (is_ip_address(name) ? "IP:" : "DNS:") + name;
  }
  auto server = issue("localhost",
                      {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, "critical,digitalSignature"},
                       {NID_ext_key_usage, "serverAuth"},
                       {NID_subject_alt_name, san}},
                      options.directory / "server.pem", options.directory / "server.key");
  if (!server) return server.error();
  out.server = std::move(*server);
  out.server_names = server_names;

  for (const auto& cn : options.client_common_names) {
    const std::string stem = "client-" + client_file_stem(cn);
    auto client = issue(cn,
                        {{NID_basic_constraints, "critical,CA:FALSE"},
                         {NID_key_usage, "critical,digitalSignature"},
                         {NID_ext_key_usage, "clientAuth"}},
                        options.directory / (stem + ".pem"), options.directory / (stem + ".key"));
    if (!client) return client.error();
    out.clients.push_back(std::move(*client));
  }
  return out;
}

}  // namespace twinfleet::auth
