"""The tests' TLS material (tests/fixtures/make_tls.sh, made by the CTest fixture tls_material in BC_TLS_DIR):
bcd's config lines for HTTPS, and urllib clients that verify bcd against the test CA."""
import os
import ssl
import urllib.request

TLS_DIR = os.environ.get("BC_TLS_DIR") or os.path.join(os.environ["BC_BUILD"], "tests", "tls")
CA = os.path.join(TLS_DIR, "ca.pem")                    # signed bcd's certificate
OTHER_CA = os.path.join(TLS_DIR, "other-ca.pem")        # unrelated: a client trusting it alone refuses bcd
CERT = os.path.join(TLS_DIR, "server.pem")              # for 127.0.0.1 and localhost
KEY = os.path.join(TLS_DIR, "server.key")
OTHER_CERT = os.path.join(TLS_DIR, "other-server.pem")  # signed by the other CA
OTHER_KEY = os.path.join(TLS_DIR, "other-server.key")
ENCRYPTED_KEY = os.path.join(TLS_DIR, "server-encrypted.key")

if not os.path.exists(CERT):
    raise SystemExit(f"no TLS material in {TLS_DIR}: run tests/fixtures/make_tls.sh {TLS_DIR} "
                     "(the CTest fixture tls_material does)")


def bcd_conf(cert=CERT, key=KEY):
    """bcd.conf lines that make bcd serve HTTPS."""
    return f"tls_cert={cert}\ntls_key={key}\n"


def context(ca=CA):
    """An SSL context that verifies the server against ca alone (hostname included)."""
    return ssl.create_default_context(cafile=ca)


def trust(ca=CA):
    """Makes every urllib.request.urlopen of this process verify https servers against ca alone."""
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context(ca))))
