#include "common/tls_files.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace bc::auth {
namespace {

// PEM files are a few KiB; a bound keeps a wrong path such as /dev/zero from being read forever.
constexpr size_t kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::optional<std::string> read_pem_text(const std::string& setting, const std::string& path, std::string& error) {
  if (path.empty()) {
    error = setting + " is empty; it needs the path of a PEM file";
    return std::nullopt;
  }
  std::unique_ptr<std::FILE, FileClose> file(std::fopen(path.c_str(), "re"));
  std::string text;
  if (file) {
    char buffer[4096];
    size_t n = 0;
    while (text.size() <= kMaxPemBytes && (n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0)
      text.append(buffer, n);
  }
  if (!file || std::ferror(file.get())) {
    error = "cannot read " + setting + " " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (text.size() > kMaxPemBytes) {
    error = setting + " " + path + " is larger than 1 MiB: not a PEM file";
    return std::nullopt;
  }
  return text;
}

UniqueBio memory_bio(const std::string& text) {
  return UniqueBio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Never prompts on the terminal for an encrypted key (OpenSSL's default would).
int refuse_passphrase(char*, int, int, void*) { return -1; }

}  // namespace

std::optional<ServerTlsPem> load_server_tls(const std::string& cert_setting, const std::string& cert_path,
                                            const std::string& key_setting, const std::string& key_path,
                                            std::string& error) {
  ServerTlsPem pem;
  auto cert_text = read_pem_text(cert_setting, cert_path, error);
  if (!cert_text) return std::nullopt;
  auto key_text = read_pem_text(key_setting, key_path, error);
  if (!key_text) return std::nullopt;

  UniqueBio cert_bio = memory_bio(*cert_text);
  UniqueX509 cert(cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, refuse_passphrase, nullptr) : nullptr);
  UniqueBio key_bio = memory_bio(*key_text);
  UniquePkey key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, refuse_passphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!cert) {
    error = cert_setting + " " + cert_path + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
    return std::nullopt;
  }
  if (!key) {
    error =
        key_text->find("ENCRYPTED") != std::string::npos
            ? key_setting + " " + key_path + " is encrypted; bcd needs the key unencrypted (readable by its user only)"
            : key_setting + " " + key_path + " holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
    return std::nullopt;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    error = key_setting + " " + key_path + " is not the key of the certificate in " + cert_setting + " " + cert_path;
    return std::nullopt;
  }
  pem.cert = std::move(*cert_text);
  pem.key = std::move(*key_text);
  return pem;
}

bool check_ca_file(const std::string& setting, const std::string& path, std::string& error) {
  auto text = read_pem_text(setting, path, error);
  if (!text) return false;
  UniqueBio bio = memory_bio(*text);
  UniqueX509 cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!cert) {
    error = setting + " " + path + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
    return false;
  }
  return true;
}

}  // namespace bc::auth
