// Owning pointers for the OpenSSL objects the auth module and its tests handle.
//
// Include this only where OpenSSL types are used anyway (the .cpp files of sim/auth, tests).
// Each pointer frees its object with the matching OpenSSL function; thread-safety is that of
// the object (not shared unless OpenSSL says it may be).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace twinfleet::auth {

// Calls `Free` on destruction; `Free`'s return value (BIO_free returns int) is ignored.
template <auto Free>
struct openssl_free {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using bio_ptr = std::unique_ptr<BIO, openssl_free<&BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_free<&BN_free>>;
using evp_mac_ptr = std::unique_ptr<EVP_MAC, openssl_free<&EVP_MAC_free>>;
using evp_mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, openssl_free<&EVP_MAC_CTX_free>>;
using evp_md_ptr = std::unique_ptr<EVP_MD, openssl_free<&EVP_MD_free>>;
using evp_md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_free<&EVP_MD_CTX_free>>;
using evp_pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free<&EVP_PKEY_free>>;
using evp_pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_free<&EVP_PKEY_CTX_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_free<&X509_free>>;
using x509_name_ptr = std::unique_ptr<X509_NAME, openssl_free<&X509_NAME_free>>;
using x509_extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_free<&X509_EXTENSION_free>>;
using x509_store_ptr = std::unique_ptr<X509_STORE, openssl_free<&X509_STORE_free>>;
using x509_store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, openssl_free<&X509_STORE_CTX_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, openssl_free<&GENERAL_NAMES_free>>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_free<&SSL_CTX_free>>;

}  // namespace twinfleet::auth
