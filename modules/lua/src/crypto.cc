// base64Escape/base64Decode (a small codec of our own), and the OpenSSL-backed pieces:
// importPublicKey/verifySignature, and the SSL connection object (facts OpenSSL reads from the
// peer certificate the host exposes as PEM).
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <string>

#include "objects.h"

namespace sylua {
namespace {

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int pk_get(lua_State* L) {
  check(L, 1, kPubKey);
  lua_getiuservalue(L, 1, 1);  // the DER bytes, or nil when they are not a public key
  return 1;
}

const EVP_MD* digest(const char* name) {
  if (!std::strcmp(name, "sha1")) return EVP_sha1();
  if (!std::strcmp(name, "sha224")) return EVP_sha224();
  if (!std::strcmp(name, "sha256")) return EVP_sha256();
  if (!std::strcmp(name, "sha384")) return EVP_sha384();
  if (!std::strcmp(name, "sha512")) return EVP_sha512();
  return nullptr;
}

// ---- SSL object -------------------------------------------------------------------------

X509* peer_cert(Dir& d) {
  std::string pem;
  if (!attr(d, "connection.peer_certificate", &pem) || pem.empty()) return nullptr;
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return x;
}

std::string name_text(X509_NAME* n) {
  if (!n) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  // RFC 2253, as Envoy prints subjects and issuers.
  X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long len = BIO_get_mem_data(bio, &p);
  std::string s(p, size_t(len));
  BIO_free(bio);
  return s;
}

Dir& ssl_dir(lua_State* L) { return live(L, check(L, 1, kSsl)); }

int push_str(lua_State* L, const std::string& s) {
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

int ssl_presented(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string v;
  lua_pushboolean(L, attr(d, "connection.peer_certificate", &v) && !v.empty());
  return 1;
}

int ssl_validated(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string v;
  // The listener verifies every presented client certificate against its CA or refuses it.
  lua_pushboolean(L, attr(d, "connection.mtls", &v) && v == "true");
  return 1;
}

int ssl_tls_version(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string v;
  attr(d, "connection.tls_version", &v);
  return push_str(L, v);
}

template <bool Issuer>
int ssl_peer_name(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string s;
  if (X509* x = peer_cert(d)) {
    s = name_text(Issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x));
    X509_free(x);
  }
  return push_str(L, s);
}

int ssl_digest(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string s;
  if (X509* x = peer_cert(d)) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509_digest(x, EVP_sha256(), md, &n);
    static const char* hex = "0123456789abcdef";
    for (unsigned i = 0; i < n; ++i) {
      s.push_back(hex[md[i] >> 4]);
      s.push_back(hex[md[i] & 15]);
    }
    X509_free(x);
  }
  return push_str(L, s);
}

int ssl_serial(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string s;
  if (X509* x = peer_cert(d)) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr);
    char* h = BN_bn2hex(bn);
    s = h;
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    OPENSSL_free(h);
    BN_free(bn);
    X509_free(x);
  }
  return push_str(L, s);
}

template <int Type>
int ssl_sans(lua_State* L) {
  Dir& d = ssl_dir(L);
  lua_newtable(L);
  X509* x = peer_cert(d);
  if (!x) return 1;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  int k = 0;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type != Type) continue;
    ASN1_IA5STRING* s = Type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
    lua_pushlstring(L, reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    size_t(ASN1_STRING_length(s)));
    lua_rawseti(L, -2, ++k);
  }
  GENERAL_NAMES_free(names);
  X509_free(x);
  return 1;
}

int ssl_pem(lua_State* L) {
  Dir& d = ssl_dir(L);
  std::string pem, out;
  attr(d, "connection.peer_certificate", &pem);
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : pem) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return push_str(L, out);
}

template <bool NotAfter>
int ssl_time(lua_State* L) {
  Dir& d = ssl_dir(L);
  lua_Integer t = 0;
  if (X509* x = peer_cert(d)) {
    const ASN1_TIME* at = NotAfter ? X509_get0_notAfter(x) : X509_get0_notBefore(x);
    struct tm tm;
    if (ASN1_TIME_to_tm(at, &tm) == 1) t = lua_Integer(timegm(&tm));
    X509_free(x);
  }
  lua_pushinteger(L, t);
  return 1;
}

int ssl_parsed_subject(lua_State* L) {
  Dir& d = ssl_dir(L);
  X509* x = peer_cert(d);
  if (!x) return lua_pushnil(L), 1;
  X509_NAME* n = X509_get_subject_name(x);
  auto field = [&](int nid) {
    char buf[256] = {0};
    int len = X509_NAME_get_text_by_NID(n, nid, buf, sizeof(buf));
    return std::string(buf, len > 0 ? size_t(len) : 0);
  };
  std::string cn = field(NID_commonName), org = field(NID_organizationName);
  X509_free(x);
  lua_newtable(L);
  lua_pushlstring(L, cn.data(), cn.size());
  lua_pushcclosure(
      L,
      [](lua_State* L) -> int {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
      },
      1);
  lua_setfield(L, -2, "commonName");
  lua_newtable(L);
  lua_pushlstring(L, org.data(), org.size());
  lua_rawseti(L, -2, 1);
  lua_pushcclosure(
      L,
      [](lua_State* L) -> int {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
      },
      1);
  lua_setfield(L, -2, "organizationName");
  return 1;
}

int ssl_empty_string(lua_State* L) {
  ssl_dir(L);
  lua_pushliteral(L, "");
  return 1;
}

int ssl_empty_table(lua_State* L) {
  ssl_dir(L);
  lua_newtable(L);
  return 1;
}

int ssl_cipher_id(lua_State* L) {
  ssl_dir(L);
  lua_pushliteral(L, "0xffff");  // not exposed through the ABI
  return 1;
}

}  // namespace

int crypto_base64_escape(lua_State* L) {
  size_t n = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(luaL_checklstring(L, 2, &n));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    luaL_addchar(&b, kB64[(v >> 18) & 63]);
    luaL_addchar(&b, kB64[(v >> 12) & 63]);
    luaL_addchar(&b, i + 1 < n ? kB64[(v >> 6) & 63] : '=');
    luaL_addchar(&b, i + 2 < n ? kB64[v & 63] : '=');
  }
  luaL_pushresult(&b);
  return 1;
}

int crypto_base64_decode(lua_State* L) {
  size_t n = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(luaL_checklstring(L, 2, &n));
  while (n > 0 && p[n - 1] == '=') --n;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    int v = b64_value(p[i]);
    if (v < 0) {
      luaL_pushresult(&b);
      lua_pushnil(L);  // malformed input
      return 1;
    }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, char((acc >> bits) & 0xFF));
    }
  }
  luaL_pushresult(&b);
  return 1;
}

int crypto_import_public_key(lua_State* L) {
  size_t n = 0;
  const char* der = luaL_checklstring(L, 2, &n);
  if (!lua_isnoneornil(L, 3)) {
    lua_Integer len = luaL_checkinteger(L, 3);
    if (len >= 0 && size_t(len) < n) n = size_t(len);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der);
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, long(n));
  new_obj(L, nullptr, kPubKey);
  if (key) {
    lua_pushlstring(L, der, n);
    EVP_PKEY_free(key);
  } else {
    lua_pushnil(L);
  }
  lua_setiuservalue(L, -2, 1);
  return 1;
}

// verifySignature(hash, pubkey, signature, sig_len, data, data_len) -> ok, error
int crypto_verify_signature(lua_State* L) {
  const char* hash = luaL_checkstring(L, 2);
  size_t key_len = 0, sig_len = 0, data_len = 0;
  const char* key = lua_isstring(L, 3) ? lua_tolstring(L, 3, &key_len) : nullptr;
  const char* sig = luaL_checklstring(L, 4, &sig_len);
  lua_Integer sl = luaL_checkinteger(L, 5);
  const char* data = luaL_checklstring(L, 6, &data_len);
  lua_Integer dl = luaL_checkinteger(L, 7);
  if (sl >= 0 && size_t(sl) < sig_len) sig_len = size_t(sl);
  if (dl >= 0 && size_t(dl) < data_len) data_len = size_t(dl);
  const EVP_MD* md = digest(hash);
  if (!md) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "%s is not supported.", hash);
    return 2;
  }
  const auto* kp = reinterpret_cast<const unsigned char*>(key ? key : "");
  EVP_PKEY* pkey = key ? d2i_PUBKEY(nullptr, &kp, long(key_len)) : nullptr;
  int rc = 0;
  if (pkey) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey) == 1)
      rc = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig), sig_len,
                            reinterpret_cast<const unsigned char*>(data), data_len);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
  }
  if (rc == 1) {
    lua_pushboolean(L, 1);
    lua_pushnil(L);
  } else {
    lua_pushboolean(L, 0);
    lua_pushstring(L, "Failed to verify digest. Error code: 0");
  }
  return 2;
}

void push_ssl(lua_State* L, Dir& d) {
  std::string v;
  if (!attr(d, "connection.tls_version", &v)) {
    lua_pushnil(L);  // a plaintext connection
    return;
  }
  new_obj(L, &d, kSsl);
}

void register_crypto(lua_State* L) {
  static const luaL_Reg pk[] = {{"get", pk_get}, {nullptr, nullptr}};
  new_class(L, kPubKey, pk, nullptr);
  static const luaL_Reg ssl[] = {{"peerCertificatePresented", ssl_presented},
                                 {"peerCertificateValidated", ssl_validated},
                                 {"uriSanLocalCertificate", ssl_empty_table},
                                 {"uriSanPeerCertificate", ssl_sans<GEN_URI>},
                                 {"dnsSansPeerCertificate", ssl_sans<GEN_DNS>},
                                 {"dnsSansLocalCertificate", ssl_empty_table},
                                 {"oidsPeerCertificate", ssl_empty_table},
                                 {"oidsLocalCertificate", ssl_empty_table},
                                 {"sha256PeerCertificateDigest", ssl_digest},
                                 {"serialNumberPeerCertificate", ssl_serial},
                                 {"issuerPeerCertificate", ssl_peer_name<true>},
                                 {"subjectPeerCertificate", ssl_peer_name<false>},
                                 {"subjectLocalCertificate", ssl_empty_string},
                                 {"parsedSubjectPeerCertificate", ssl_parsed_subject},
                                 {"urlEncodedPemEncodedPeerCertificate", ssl_pem},
                                 {"urlEncodedPemEncodedPeerCertificateChain", ssl_pem},
                                 {"validFromPeerCertificate", ssl_time<false>},
                                 {"expirationPeerCertificate", ssl_time<true>},
                                 {"sessionId", ssl_empty_string},
                                 {"ciphersuiteId", ssl_cipher_id},
                                 {"ciphersuiteString", ssl_empty_string},
                                 {"tlsVersion", ssl_tls_version},
                                 {nullptr, nullptr}};
  new_class(L, kSsl, ssl, nullptr);
}

}  // namespace sylua
