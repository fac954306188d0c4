// TLS files checked before use, so that a wrong path or file is an error naming the setting and the file at
// start rather than a handshake that fails later. bcd's certificate and key (tls_cert=, tls_key=) and a
// client's CA file (ca_file=) are PEM; every client verifies bcd's certificate against its CA file.
#pragma once

#include <optional>
#include <string>

namespace bc::auth {

struct ServerTlsPem {
  std::string cert;  // the certificate, then any intermediates, as PEM text
  std::string key;   // its unencrypted private key, as PEM text
};

// Reads bcd's certificate and key and checks that they parse and belong together. cert_setting and
// key_setting name them in messages ("tls_cert", "tls_key"). nullopt with error set otherwise, e.g.
// "cannot read tls_cert /etc/x.pem: No such file or directory".
std::optional<ServerTlsPem> load_server_tls(const std::string& cert_setting, const std::string& cert_path,
                                            const std::string& key_setting, const std::string& key_path,
                                            std::string& error);

// A client's CA file: readable, holding at least one PEM certificate. setting names it in messages
// ("ca_file", "--ca-file"). False with error set otherwise.
bool check_ca_file(const std::string& setting, const std::string& path, std::string& error);

}  // namespace bc::auth
