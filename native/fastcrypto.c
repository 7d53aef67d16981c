/* wucme crypto fast path (native/fastcrypto.h), linked against the system's libcrypto.
 *
 * The certificate scan reads DER itself and answers only for certificates it
 * understands completely: strict DER, the algorithms and extensions ACME CAs use, each
 * checked at least as strictly as `cryptography` checks it.  Anything else, every
 * malformed input included, is FC_EUNSUPP and the Python twin decides, so the two never
 * disagree on what a file means.  The builders (tls-alpn-01 certificate, CSR) write DER
 * in the exact field order and encodings `cryptography`'s builders use.
 */
/* cffi-link: crypto */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fastcrypto.h"

struct fc_key {
    EVP_PKEY *pkey;
    int type;
};

/* --- reading DER ---------------------------------------------------------------------- */

struct der {
    const unsigned char *p, *end;
};

/* The next TLV: a one-byte tag (tag numbers 0..30 only) and a minimal definite length. */
static int der_next(struct der *d, int *tag, struct der *val)
{
    const unsigned char *p = d->p;
    size_t len, left;
    if (d->end - p < 2)
        return -1;
    *tag = *p++;
    if ((*tag & 0x1f) == 0x1f)
        return -1;
    len = *p++;
    if (len & 0x80) {
        int n = (int)(len & 0x7f);
        if (n == 0 || n > 3 || d->end - p < n || *p == 0)
            return -1;
        len = 0;
        while (n--)
            len = (len << 8) | *p++;
        if (len < 0x80)
            return -1;
    }
    left = (size_t)(d->end - p);
    if (len > left)
        return -1;
    val->p = p;
    val->end = p + len;
    d->p = p + len;
    return 0;
}

/* The next TLV, which must have tag `want`. */
static int der_expect(struct der *d, int want, struct der *val)
{
    int tag;
    if (der_next(d, &tag, val) < 0 || tag != want)
        return -1;
    return 0;
}

static int der_peek(const struct der *d)
{
    return d->p < d->end ? *d->p : -1;
}

static size_t der_len(const struct der *d)
{
    return (size_t)(d->end - d->p);
}

static int der_eq(const struct der *d, const unsigned char *b, size_t n)
{
    return der_len(d) == n && memcmp(d->p, b, n) == 0;
}

/* An OBJECT IDENTIFIER's content: minimal sub-identifiers of at most 9 bytes, 1..63 bytes. */
static int oid_ok(const struct der *o)
{
    const unsigned char *p = o->p;
    size_t n = der_len(o), run = 0;
    if (n == 0 || n > 63 || (o->end[-1] & 0x80))
        return 0;
    for (; p < o->end; p++) {
        if (run == 0 && *p == 0x80)
            return 0;
        run = (*p & 0x80) ? run + 1 : 0;
        if (run >= 9)
            return 0;
    }
    return 1;
}

static int expect_oid(struct der *d, struct der *o)
{
    return der_expect(d, 0x06, o) == 0 && oid_ok(o) ? 0 : -1;
}

static int printable_ok(const struct der *s)
{
    for (const unsigned char *p = s->p; p < s->end; p++) {
        unsigned char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '\'' || c == '(' || c == ')' || c == '+' || c == ',' ||
              c == '-' || c == '.' || c == '/' || c == ':' || c == '=' || c == '?'))
            return 0;
    }
    return 1;
}

static int ia5_ok(const struct der *s)
{
    for (const unsigned char *p = s->p; p < s->end; p++)
        if (*p & 0x80)
            return 0;
    return 1;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_ok(const struct der *s)
{
    const unsigned char *p = s->p, *e = s->end;
    while (p < e) {
        unsigned c = *p++;
        int more;
        unsigned cp, min;
        if (c < 0x80)
            continue;
        if (c >= 0xc2 && c <= 0xdf) { more = 1; cp = c & 0x1f; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { more = 2; cp = c & 0x0f; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { more = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (e - p < more)
            return 0;
        while (more--) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*p++ & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

static const unsigned char OID_CN[] = {0x55, 0x04, 0x03};
static const unsigned char OID_C[] = {0x55, 0x04, 0x06};
static const unsigned char OID_JURISDICTION_C[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82,
                                                   0x37, 0x3c, 0x02, 0x01, 0x03};

static void add_name(struct fc_cert *out, const unsigned char *base, int type, const struct der *v,
                     int *full)
{
    if (out->nnames >= FC_MAX_NAMES) {
        *full = 1;
        return;
    }
    out->name_type[out->nnames] = type;
    out->name_off[out->nnames] = (int)(v->p - base);
    out->name_len[out->nnames] = (int)der_len(v);
    out->nnames++;
}

/* A Name: single-valued RDNs of UTF8String, PrintableString or IA5String values.  With
   `out`, the commonName values are recorded (they become names). */
static int parse_name(struct der *d, struct fc_cert *out, const unsigned char *base)
{
    struct der name, rdn, atv, oid, val;
    int tag, full = 0;
    if (der_expect(d, 0x30, &name) < 0)
        return -1;
    while (name.p < name.end) {
        if (der_expect(&name, 0x31, &rdn) < 0 || der_expect(&rdn, 0x30, &atv) < 0 ||
            rdn.p != rdn.end)
            return -1;
        if (expect_oid(&atv, &oid) < 0 || der_next(&atv, &tag, &val) < 0 || atv.p != atv.end)
            return -1;
        if (tag == 0x0c) {
            if (!utf8_ok(&val))
                return -1;
        } else if (tag == 0x13) {
            if (!printable_ok(&val))
                return -1;
        } else if (tag == 0x16) {
            if (!ia5_ok(&val))
                return -1;
        } else {
            return -1;
        }
        if ((der_eq(&oid, OID_C, sizeof OID_C) ||
             der_eq(&oid, OID_JURISDICTION_C, sizeof OID_JURISDICTION_C)) && der_len(&val) != 2)
            return -1;
        if (der_eq(&oid, OID_CN, sizeof OID_CN)) {
            size_t n = der_len(&val);
            if (n < 1 || n > 64)
                return -1;
            if (out != NULL)
                add_name(out, base, FC_NAME_CN, &val, &full);
        }
    }
    return full ? -1 : 0;
}

/* AlgorithmIdentifier encodings accepted, as whole TLVs. */
static const unsigned char ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x02};
static const unsigned char ALG_ECDSA_SHA384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x03};
static const unsigned char ALG_ECDSA_SHA512[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x04};
static const unsigned char ALG_RSA_SHA256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
static const unsigned char ALG_RSA_SHA384[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00};
static const unsigned char ALG_RSA_SHA512[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00};
static const unsigned char ALG_ED25519[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70};
static const unsigned char KEY_RSA[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                        0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
static const unsigned char KEY_P256[] = {0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                         0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                         0x03, 0x01, 0x07};
static const unsigned char KEY_P384[] = {0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                         0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char KEY_P521[] = {0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                         0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

struct blob {
    const unsigned char *b;
    size_t n;
};
#define BLOB(x) {x, sizeof x}
static const struct blob SIG_ALGS[] = {BLOB(ALG_ECDSA_SHA256), BLOB(ALG_ECDSA_SHA384),
                                       BLOB(ALG_ECDSA_SHA512), BLOB(ALG_RSA_SHA256),
                                       BLOB(ALG_RSA_SHA384),   BLOB(ALG_RSA_SHA512),
                                       BLOB(ALG_ED25519)};
static const struct blob KEY_ALGS[] = {BLOB(KEY_RSA), BLOB(KEY_P256), BLOB(KEY_P384),
                                       BLOB(KEY_P521), BLOB(ALG_ED25519)};

/* The next TLV is one of `algs`, byte for byte. */
static int expect_alg(struct der *d, const struct blob *algs, size_t nalgs)
{
    const unsigned char *start = d->p;
    struct der v;
    if (der_expect(d, 0x30, &v) < 0)
        return -1;
    for (size_t i = 0; i < nalgs; i++)
        if ((size_t)(d->p - start) == algs[i].n && memcmp(start, algs[i].b, algs[i].n) == 0)
            return 0;
    return -1;
}

/* A BIT STRING with no unused bits (signatures, public keys). */
static int expect_bits(struct der *d)
{
    struct der v;
    if (der_expect(d, 0x03, &v) < 0 || der_len(&v) < 1 || v.p[0] != 0)
        return -1;
    return 0;
}

static int two(const unsigned char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, years 1970..9999. */
static int parse_time(struct der *d, long long *t)
{
    static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct der v;
    int tag, year, i, f[5];
    const unsigned char *p;
    if (der_next(d, &tag, &v) < 0)
        return -1;
    p = v.p;
    if (tag == 0x17 && der_len(&v) == 13) {
        if ((year = two(p)) < 0)
            return -1;
        year += year < 50 ? 2000 : 1900;
        p += 2;
    } else if (tag == 0x18 && der_len(&v) == 15) {
        int hi = two(p), lo = two(p + 2);
        if (hi < 0 || lo < 0)
            return -1;
        year = hi * 100 + lo;
        p += 4;
    } else {
        return -1;
    }
    for (i = 0; i < 5; i++)
        if ((f[i] = two(p + 2 * i)) < 0)
            return -1;
    if (p[10] != 'Z' || year < 1970)
        return -1;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (f[0] < 1 || f[0] > 12 || f[1] < 1 || f[1] > mdays[f[0] - 1] + (f[0] == 2 && leap) ||
        f[2] > 23 || f[3] > 59 || f[4] > 59)
        return -1;
    *t = days_from_civil(year, (unsigned)f[0], (unsigned)f[1]) * 86400 + f[2] * 3600 +
         f[3] * 60 + f[4];
    return 0;
}

/* A minimal, positive INTEGER of at most 21 content octets. */
static int expect_serial(struct der *d, struct der *v)
{
    if (der_expect(d, 0x02, v) < 0)
        return -1;
    size_t n = der_len(v);
    if (n < 1 || n > 21 || (v->p[0] & 0x80))
        return -1;
    if (n > 1 && v->p[0] == 0 && !(v->p[1] & 0x80))
        return -1;
    return 0;
}

/* --- the leaf's extensions ---------------------------------------------------------------
   Each list must hold at least one element: `cryptography` refuses empty ones (SIZE
   (1..MAX)), some with TypeError. */

enum {
    X_SAN, X_AKI, X_SKI, X_KU, X_EKU, X_BC, X_AIA, X_CP, X_CRLDP, X_SCT, X_TLSF, X_NKNOWN
};
static const unsigned char XO_SAN[] = {0x55, 0x1d, 0x11};
static const unsigned char XO_AKI[] = {0x55, 0x1d, 0x23};
static const unsigned char XO_SKI[] = {0x55, 0x1d, 0x0e};
static const unsigned char XO_KU[] = {0x55, 0x1d, 0x0f};
static const unsigned char XO_EKU[] = {0x55, 0x1d, 0x25};
static const unsigned char XO_BC[] = {0x55, 0x1d, 0x13};
static const unsigned char XO_AIA[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01};
static const unsigned char XO_CP[] = {0x55, 0x1d, 0x20};
static const unsigned char XO_CRLDP[] = {0x55, 0x1d, 0x1f};
static const unsigned char XO_SCT[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02};
static const unsigned char XO_TLSF[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x18};
static const struct blob EXT_OIDS[X_NKNOWN] = {
    BLOB(XO_SAN), BLOB(XO_AKI), BLOB(XO_SKI), BLOB(XO_KU),    BLOB(XO_EKU), BLOB(XO_BC),
    BLOB(XO_AIA), BLOB(XO_CP),  BLOB(XO_CRLDP), BLOB(XO_SCT), BLOB(XO_TLSF)};
static const unsigned char QT_CPS[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x01};

static int ext_san(struct der v, struct fc_cert *out, const unsigned char *base)
{
    struct der seq, gn;
    int tag, full = 0;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end) {
        if (der_next(&seq, &tag, &gn) < 0)
            return -1;
        switch (tag) {
        case 0x82: /* dNSName */
            if (!ia5_ok(&gn))
                return -1;
            if (out != NULL)
                add_name(out, base, FC_NAME_DNS, &gn, &full);
            break;
        case 0x87: /* iPAddress */
            if (der_len(&gn) != 4 && der_len(&gn) != 16)
                return -1;
            if (out != NULL)
                add_name(out, base, FC_NAME_IP, &gn, &full);
            break;
        case 0x81: /* rfc822Name */
        case 0x86: /* uniformResourceIdentifier */
            if (!ia5_ok(&gn))
                return -1;
            break;
        default:
            return -1;
        }
    }
    return full ? -1 : 0;
}

static int ext_aki(struct der v, struct fc_cert *out, const unsigned char *base)
{
    struct der seq, kid;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end)
        return -1;
    if (seq.p == seq.end)
        return 0;
    if (der_expect(&seq, 0x80, &kid) < 0 || seq.p != seq.end)
        return -1;
    out->aki_off = (int)(kid.p - base);
    out->aki_len = (int)der_len(&kid);
    return 0;
}

static int ext_ski(struct der v)
{
    struct der s;
    return der_expect(&v, 0x04, &s) == 0 && v.p == v.end ? 0 : -1;
}

static int ext_ku(struct der v)
{
    struct der b;
    if (der_expect(&v, 0x03, &b) < 0 || v.p != v.end)
        return -1;
    size_t n = der_len(&b);
    if (n == 1)
        return b.p[0] == 0 ? 0 : -1;
    /* One byte of bits: no encipherOnly (bit 7) nor anything past it, padding bits zero. */
    if (n != 2 || b.p[0] > 7 || (b.p[1] & 0x01) || (b.p[1] & ((1u << b.p[0]) - 1)))
        return -1;
    return 0;
}

static int ext_eku(struct der v)
{
    struct der seq, o;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end)
        if (expect_oid(&seq, &o) < 0)
            return -1;
    return 0;
}

static int ext_bc(struct der v)
{
    struct der seq, b, i;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end)
        return -1;
    if (seq.p == seq.end)
        return 0;
    if (der_expect(&seq, 0x01, &b) < 0 || !der_eq(&b, (const unsigned char *)"\xff", 1))
        return -1;
    if (seq.p == seq.end)
        return 0;
    if (der_expect(&seq, 0x02, &i) < 0 || der_len(&i) != 1 || (i.p[0] & 0x80) ||
        seq.p != seq.end)
        return -1;
    return 0;
}

static int ext_aia(struct der v)
{
    struct der seq, ad, o, uri;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end) {
        if (der_expect(&seq, 0x30, &ad) < 0 || expect_oid(&ad, &o) < 0 ||
            der_expect(&ad, 0x86, &uri) < 0 || ad.p != ad.end || !ia5_ok(&uri))
            return -1;
    }
    return 0;
}

static int ext_cp(struct der v)
{
    struct der seq, pi, o, quals, q, qo, s;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end) {
        if (der_expect(&seq, 0x30, &pi) < 0 || expect_oid(&pi, &o) < 0)
            return -1;
        if (pi.p == pi.end)
            continue;
        if (der_expect(&pi, 0x30, &quals) < 0 || pi.p != pi.end || quals.p == quals.end)
            return -1;
        while (quals.p < quals.end) {
            if (der_expect(&quals, 0x30, &q) < 0 || der_expect(&q, 0x06, &qo) < 0 ||
                !der_eq(&qo, QT_CPS, sizeof QT_CPS) || der_expect(&q, 0x16, &s) < 0 ||
                q.p != q.end || !ia5_ok(&s))
                return -1;
        }
    }
    return 0;
}

static int ext_crldp(struct der v)
{
    struct der seq, dp, dpn, full, uri;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end) {
        if (der_expect(&seq, 0x30, &dp) < 0 || der_expect(&dp, 0xa0, &dpn) < 0 ||
            dp.p != dp.end || der_expect(&dpn, 0xa0, &full) < 0 || dpn.p != dpn.end ||
            full.p == full.end)
            return -1;
        while (full.p < full.end)
            if (der_expect(&full, 0x86, &uri) < 0 || !ia5_ok(&uri))
                return -1;
    }
    return 0;
}

static unsigned u16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* The RFC 6962 SignedCertificateTimestampList, as `cryptography` reads it, but whole. */
static int ext_sct(struct der v)
{
    struct der os;
    const unsigned char *p, *end;
    if (der_expect(&v, 0x04, &os) < 0 || v.p != v.end || der_len(&os) < 2)
        return -1;
    p = os.p;
    if (u16(p) != der_len(&os) - 2)
        return -1;
    p += 2;
    end = os.end;
    if (p == end)
        return -1;
    while (p < end) {
        const unsigned char *s, *se;
        unsigned n;
        if (end - p < 2 || (n = u16(p)) > (unsigned)(end - p - 2))
            return -1;
        s = p + 2;
        se = s + n;
        p = se;
        if (se - s < 1 + 32 + 8 + 2 || s[0] != 0)
            return -1;
        s += 1 + 32 + 8;
        n = u16(s);
        if ((unsigned)(se - s - 2) < n)
            return -1;
        s += 2 + n;
        if (se - s < 4 || s[0] < 1 || s[0] > 6 || s[1] < 1 || s[1] > 3)
            return -1;
        s += 2;
        n = u16(s);
        if ((unsigned)(se - s - 2) != n)
            return -1;
    }
    return 0;
}

static int ext_tlsf(struct der v)
{
    struct der seq, i;
    if (der_expect(&v, 0x30, &seq) < 0 || v.p != v.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end)
        if (der_expect(&seq, 0x02, &i) < 0 || der_len(&i) != 1 || (i.p[0] != 5 && i.p[0] != 17))
            return -1;
    return 0;
}

/* Extensions: framing for every certificate; for the leaf (out != NULL) each must be a
   known one, well-formed, and none may repeat. */
static int parse_extensions(struct der *d, struct fc_cert *out, const unsigned char *base)
{
    struct der wrap, seq, ext, oid, crit, val;
    int seen[X_NKNOWN] = {0};
    if (der_expect(d, 0xa3, &wrap) < 0 || der_expect(&wrap, 0x30, &seq) < 0 ||
        wrap.p != wrap.end || seq.p == seq.end)
        return -1;
    while (seq.p < seq.end) {
        int k, r;
        if (der_expect(&seq, 0x30, &ext) < 0 || expect_oid(&ext, &oid) < 0)
            return -1;
        if (der_peek(&ext) == 0x01) {
            if (der_expect(&ext, 0x01, &crit) < 0 || !der_eq(&crit, (const unsigned char *)"\xff", 1))
                return -1;
        }
        if (der_expect(&ext, 0x04, &val) < 0 || ext.p != ext.end)
            return -1;
        if (out == NULL)
            continue;
        for (k = 0; k < X_NKNOWN; k++)
            if (der_eq(&oid, EXT_OIDS[k].b, EXT_OIDS[k].n))
                break;
        if (k == X_NKNOWN || seen[k]++)
            return -1;
        switch (k) {
        case X_SAN: r = ext_san(val, out, base); break;
        case X_AKI: r = ext_aki(val, out, base); break;
        case X_SKI: r = ext_ski(val); break;
        case X_KU: r = ext_ku(val); break;
        case X_EKU: r = ext_eku(val); break;
        case X_BC: r = ext_bc(val); break;
        case X_AIA: r = ext_aia(val); break;
        case X_CP: r = ext_cp(val); break;
        case X_CRLDP: r = ext_crldp(val); break;
        case X_SCT: r = ext_sct(val); break;
        default: r = ext_tlsf(val); break;
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

static const unsigned char V3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};

/* One certificate, exactly `len` bytes; the leaf (out != NULL) also fills `out`. */
static int parse_cert(const unsigned char *der, size_t len, struct fc_cert *out)
{
    struct der all = {der, der + len}, cert, tbs, serial, validity;
    long long nb, na;
    if (der_expect(&all, 0x30, &cert) < 0 || all.p != all.end)
        return -1;
    if (der_expect(&cert, 0x30, &tbs) < 0)
        return -1;
    if (der_peek(&tbs) == 0xa0) {
        if (der_len(&tbs) < sizeof V3 || memcmp(tbs.p, V3, sizeof V3) != 0)
            return -1;
        tbs.p += sizeof V3;
    }
    if (expect_serial(&tbs, &serial) < 0 ||
        expect_alg(&tbs, SIG_ALGS, sizeof SIG_ALGS / sizeof SIG_ALGS[0]) < 0 ||
        parse_name(&tbs, NULL, der) < 0)
        return -1;
    if (der_expect(&tbs, 0x30, &validity) < 0 || parse_time(&validity, &nb) < 0 ||
        parse_time(&validity, &na) < 0 || validity.p != validity.end)
        return -1;
    if (out != NULL) {
        out->nnames = 0;
        out->aki_len = -1;
        out->aki_off = 0;
    }
    if (parse_name(&tbs, out, der) < 0)
        return -1;
    {
        struct der spki;
        if (der_expect(&tbs, 0x30, &spki) < 0 ||
            expect_alg(&spki, KEY_ALGS, sizeof KEY_ALGS / sizeof KEY_ALGS[0]) < 0 ||
            expect_bits(&spki) < 0 || spki.p != spki.end)
            return -1;
    }
    if (tbs.p < tbs.end && parse_extensions(&tbs, out, der) < 0)
        return -1;
    if (tbs.p != tbs.end)
        return -1;
    if (expect_alg(&cert, SIG_ALGS, sizeof SIG_ALGS / sizeof SIG_ALGS[0]) < 0 ||
        expect_bits(&cert) < 0 || cert.p != cert.end)
        return -1;
    if (out != NULL) {
        out->not_before = nb;
        out->not_after = na;
        out->der_len = (int)len;
        out->serial_off = (int)(serial.p - der);
        out->serial_len = (int)der_len(&serial);
    }
    return 0;
}

/* --- PEM ---------------------------------------------------------------------------------- */

static signed char B64[256];
static int b64_ready;

static void b64_init(void)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (b64_ready)
        return;
    memset(B64, -1, sizeof B64);
    for (int i = 0; i < 64; i++)
        B64[(unsigned char)a[i]] = (signed char)i;
    b64_ready = 1;
}

/* A PEM body: base64 in lines ending LF or CR LF, canonical padding, zero trailing bits.
   No empty line: the `pem` crate `cryptography` uses takes what comes before one for
   RFC 1421 headers. */
static long b64_decode(const unsigned char *s, const unsigned char *e, unsigned char *out)
{
    unsigned acc = 0;
    int n = 0, pad = 0, line_start = 1;
    long o = 0;
    for (; s < e; s++) {
        unsigned char c = *s;
        if (c == '\r' && s + 1 < e && s[1] == '\n')
            continue;
        if (c == '\n') {
            if (line_start)
                return -1;
            line_start = 1;
            continue;
        }
        line_start = 0;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || B64[c] < 0)
            return -1;
        acc = (acc << 6) | (unsigned)B64[c];
        if (++n == 4) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            n = 0;
            acc = 0;
        }
    }
    if (n == 0 && pad == 0)
        return o;
    if (n == 2 && pad == 2 && (acc & 0x0f) == 0) {
        out[o++] = (unsigned char)(acc >> 4);
        return o;
    }
    if (n == 3 && pad == 1 && (acc & 0x03) == 0) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
        return o;
    }
    return -1;
}

static const unsigned char *find(const unsigned char *p, const unsigned char *e, const char *s)
{
    size_t n = strlen(s);
    while ((size_t)(e - p) >= n) {
        const unsigned char *q = memchr(p, s[0], (size_t)(e - p) - n + 1);
        if (q == NULL)
            return NULL;
        if (memcmp(q, s, n) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static const unsigned char *eol(const unsigned char *p, const unsigned char *e)
{
    if (p < e && *p == '\n')
        return p + 1;
    if (e - p >= 2 && p[0] == '\r' && p[1] == '\n')
        return p + 2;
    return NULL;
}

int fc_cert_scan(const unsigned char *pem, size_t len, unsigned char *der, size_t cap,
                 struct fc_cert *out)
{
    const unsigned char *p = pem, *e = pem + len;
    size_t used = 0; /* der[0 .. used) holds the leaf; later blocks are decoded after it */
    int ncerts = 0, seen_key = 0;
    b64_init();
    if (cap < len || out == NULL)
        return FC_EUNSUPP;
    while (p < e) {
        const unsigned char *label, *lend, *body, *end;
        size_t lablen;
        int is_cert;
        long n;
        while (p < e && (*p == '\n' || *p == '\r'))
            p++;
        if (p == e)
            break;
        if (e - p < 11 || memcmp(p, "-----BEGIN ", 11) != 0)
            return FC_EUNSUPP;
        label = p + 11;
        if ((lend = find(label, e, "-----")) == NULL || (body = eol(lend + 5, e)) == NULL)
            return FC_EUNSUPP;
        lablen = (size_t)(lend - label);
        is_cert = lablen == 11 && memcmp(label, "CERTIFICATE", 11) == 0;
        if (!is_cert && !(lablen == 11 && memcmp(label, "PRIVATE KEY", 11) == 0) &&
            !(lablen == 14 && memcmp(label, "EC PRIVATE KEY", 14) == 0) &&
            !(lablen == 15 && memcmp(label, "RSA PRIVATE KEY", 15) == 0))
            return FC_EUNSUPP;
        if ((end = find(body, e, "-----END ")) == NULL)
            return FC_EUNSUPP;
        if ((size_t)(e - end) < 9 + lablen + 5 || memcmp(end + 9, label, lablen) != 0 ||
            memcmp(end + 9 + lablen, "-----", 5) != 0)
            return FC_EUNSUPP;
        p = end + 9 + lablen + 5;
        if (p < e && (p = eol(p, e)) == NULL)
            return FC_EUNSUPP;
        /* Certificates first, then the key wucme appends: anything else is the twin's. */
        if ((is_cert && seen_key) || (!is_cert && ncerts == 0))
            return FC_EUNSUPP;
        if ((n = b64_decode(body, end, der + used)) < 0)
            return FC_EUNSUPP;
        if (!is_cert) {
            seen_key = 1;
            continue;
        }
        if (parse_cert(der + used, (size_t)n, ncerts == 0 ? out : NULL) < 0)
            return FC_EUNSUPP;
        if (ncerts++ == 0)
            used = (size_t)n;
    }
    return ncerts > 0 ? FC_OK : FC_EUNSUPP;
}

int fc_cert_file(const char *path, unsigned char *der, size_t cap, struct fc_cert *out)
{
    unsigned char stack[16384], *buf = stack;
    struct stat st;
    ssize_t got;
    size_t size, have = 0;
    int fd, r;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? FC_ENOENT : FC_EIO;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 24)) {
        close(fd);
        return FC_EIO;
    }
    size = (size_t)st.st_size;
    if (size > cap) {
        close(fd);
        return FC_EUNSUPP;
    }
    if (size + 1 > sizeof stack && (buf = malloc(size + 1)) == NULL) {
        close(fd);
        return FC_EIO;
    }
    /* One byte more than stat said, to see a file that grew: then the caller reads it. */
    while (have <= size && (got = read(fd, buf + have, size + 1 - have)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        have += (size_t)got;
    }
    close(fd);
    r = have == size ? fc_cert_scan(buf, size, der, cap, out) : FC_EIO;
    if (buf != stack)
        free(buf);
    return r;
}

/* --- keys ------------------------------------------------------------------------------- */

static int key_kind(EVP_PKEY *pkey)
{
    char group[32];
    size_t glen = 0;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        return FC_RSA;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &glen))
            return FC_EKEY;
        if (strcmp(group, "prime256v1") == 0)
            return FC_P256;
        if (strcmp(group, "secp384r1") == 0)
            return FC_P384;
        return FC_EKEY;
    default:
        return FC_EKEY;
    }
}

static fc_key *wrap_key(EVP_PKEY *pkey)
{
    fc_key *k;
    if (pkey == NULL)
        return NULL;
    if ((k = malloc(sizeof *k)) == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    k->type = key_kind(pkey);
    return k;
}

fc_key *fc_key_load(const unsigned char *data, size_t len, int der)
{
    EVP_PKEY *pkey = NULL;
    if (len > 1 << 20)
        return NULL;
    if (der) {
        const unsigned char *p = data;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
        if (pkey != NULL && p != data + len) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    } else {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio == NULL)
            return NULL;
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    return wrap_key(pkey);
}

fc_key *fc_key_ec(int bits, const unsigned char *priv, size_t priv_len,
                  const unsigned char *pub, size_t pub_len)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;
    if ((bits != 256 && bits != 384) || pub_len != (size_t)(bits / 4 + 1) || priv_len > 64)
        return NULL;
    if ((d = BN_bin2bn(priv, (int)priv_len, NULL)) == NULL || (bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                         bits == 256 ? "prime256v1" : "secp384r1", 0) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return wrap_key(pkey);
}

fc_key *fc_key_gen_ec(int bits)
{
    if (bits != 256 && bits != 384)
        return NULL;
    return wrap_key(EVP_EC_gen(bits == 256 ? "P-256" : "P-384"));
}

void fc_key_free(fc_key *key)
{
    if (key != NULL) {
        EVP_PKEY_free(key->pkey);
        free(key);
    }
}

int fc_key_type(const fc_key *key)
{
    return key == NULL ? FC_EKEY : key->type;
}

int fc_key_pkcs8(const fc_key *key, unsigned char *out, size_t cap, size_t *outlen)
{
    PKCS8_PRIV_KEY_INFO *p8;
    int n;
    unsigned char *p = out;
    if (key == NULL || (p8 = EVP_PKEY2PKCS8(key->pkey)) == NULL)
        return FC_EKEY;
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    *outlen = n > 0 ? (size_t)n : 0;
    if (n <= 0 || (size_t)n > cap) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return n <= 0 ? FC_ECRYPTO : FC_ESPACE;
    }
    i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return n;
}

/* Sign `data` by the key's rule: SHA-256 (SHA-384 for P-384, or when sha384 is set for
   EC keys); DER ECDSA-Sig-Value or the PKCS#1 v1.5 signature into sig. */
static int sign(const fc_key *key, const EVP_MD *md, const unsigned char *data, size_t len,
                unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;
    if (ctx == NULL)
        return FC_ECRYPTO;
    ok = EVP_DigestSignInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
         EVP_DigestSign(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? FC_OK : FC_ECRYPTO;
}

static const EVP_MD *key_md(const fc_key *key)
{
    return key->type == FC_P384 ? EVP_sha384() : EVP_sha256();
}

/* --- base64url and the JWS ------------------------------------------------------------- */

static size_t b64url(const unsigned char *s, size_t n, unsigned char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8) | s[i + 2];
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        *o++ = a[(v >> 6) & 63];
        *o++ = a[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8);
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        *o++ = a[(v >> 6) & 63];
    }
    return (size_t)(o - out);
}

static size_t b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static int ecdsa_raw(const unsigned char *der, size_t len, int size, unsigned char *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *ss;
    int ok;
    if (s == NULL)
        return FC_ECRYPTO;
    ECDSA_SIG_get0(s, &r, &ss);
    ok = BN_bn2binpad(r, out, size) == size && BN_bn2binpad(ss, out + size, size) == size;
    ECDSA_SIG_free(s);
    return ok ? FC_OK : FC_ECRYPTO;
}

int fc_jws_sign(const fc_key *key, const unsigned char *prot, size_t prot_len,
                const unsigned char *payload, size_t payload_len,
                unsigned char *out, size_t cap, size_t *outlen)
{
    static const char P1[] = "{\"protected\":\"", P2[] = "\",\"payload\":\"",
                      P3[] = "\",\"signature\":\"", P4[] = "\"}";
    unsigned char sig[1100], raw[96];
    size_t siglen = sizeof sig, b1, b2, rawlen, need, o;
    const unsigned char *s;
    int r, size;
    if (key == NULL || key->type < 0)
        return FC_EKEY;
    if (prot_len > (1u << 28) || payload_len > (1u << 28))
        return FC_EARG;
    b1 = b64url_len(prot_len);
    b2 = b64url_len(payload_len);
    if (key->type == FC_RSA) {
        if (EVP_PKEY_get_size(key->pkey) > (int)sizeof sig)
            return FC_EKEY;
        rawlen = (size_t)EVP_PKEY_get_size(key->pkey);
    } else {
        rawlen = key->type == FC_P384 ? 96 : 64;
    }
    need = sizeof P1 - 1 + b1 + sizeof P2 - 1 + b2 + sizeof P3 - 1 + b64url_len(rawlen) +
           sizeof P4 - 1;
    *outlen = need;
    if (need > cap)
        return FC_ESPACE;
    /* The signing input is B64(prot) "." B64(payload), written where the JSON needs it
       and signed from a copy-free view: the "," P2 splits them, so sign a joined copy. */
    o = 0;
    memcpy(out, P1, sizeof P1 - 1);
    o += sizeof P1 - 1;
    size_t p64 = o;
    o += b64url(prot, prot_len, out + o);
    memcpy(out + o, P2, sizeof P2 - 1);
    o += sizeof P2 - 1;
    size_t y64 = o;
    o += b64url(payload, payload_len, out + o);
    {
        unsigned char stack[4096], *input = b1 + 1 + b2 <= sizeof stack ? stack : malloc(b1 + 1 + b2);
        if (input == NULL)
            return FC_ECRYPTO;
        memcpy(input, out + p64, b1);
        input[b1] = '.';
        memcpy(input + b1 + 1, out + y64, b2);
        r = sign(key, key_md(key), input, b1 + 1 + b2, sig, &siglen);
        if (input != stack)
            free(input);
    }
    if (r < 0)
        return r;
    if (key->type == FC_RSA) {
        s = sig;
    } else {
        size = key->type == FC_P384 ? 48 : 32;
        if ((r = ecdsa_raw(sig, siglen, size, raw)) < 0)
            return r;
        s = raw;
        siglen = rawlen;
    }
    if (siglen != rawlen)
        return FC_ECRYPTO;
    memcpy(out + o, P3, sizeof P3 - 1);
    o += sizeof P3 - 1;
    o += b64url(s, siglen, out + o);
    memcpy(out + o, P4, sizeof P4 - 1);
    o += sizeof P4 - 1;
    return (int)o;
}

/* --- writing DER, back to front ---------------------------------------------------------- */

struct wr {
    unsigned char *buf, *p;
    int err;
};

static void w_raw(struct wr *w, const void *b, size_t n)
{
    if (w->err || (size_t)(w->p - w->buf) < n) {
        w->err = 1;
        return;
    }
    w->p -= n;
    memcpy(w->p, b, n);
}

static void w_byte(struct wr *w, unsigned char c)
{
    w_raw(w, &c, 1);
}

/* The tag and length of what was written since `mark`. */
static void w_wrap(struct wr *w, unsigned char *mark, int tag)
{
    size_t n = (size_t)(mark - w->p);
    if (n < 0x80) {
        w_byte(w, (unsigned char)n);
    } else {
        int k = 0;
        for (size_t m = n; m; m >>= 8, k++)
            w_byte(w, (unsigned char)(m & 0xff));
        w_byte(w, (unsigned char)(0x80 | k));
    }
    w_byte(w, (unsigned char)tag);
}

static void w_tlv(struct wr *w, int tag, const void *b, size_t n)
{
    unsigned char *mark = w->p;
    w_raw(w, b, n);
    w_wrap(w, mark, tag);
}

/* An INTEGER from unsigned big-endian bytes: leading zeros dropped, 0x00 added for the sign. */
static void w_uint(struct wr *w, const unsigned char *b, size_t n)
{
    unsigned char *mark = w->p;
    while (n > 1 && b[0] == 0) {
        b++;
        n--;
    }
    w_raw(w, b, n);
    if (n == 0 || (b[0] & 0x80))
        w_byte(w, 0);
    w_wrap(w, mark, 0x02);
}

/* UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
static void w_time(struct wr *w, long long t)
{
    long long days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    long long secs = t - days * 86400;
    /* civil_from_days */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    char s[20];
    y += m <= 2;
    int hh = (int)(secs / 3600), mi = (int)(secs / 60 % 60), ss = (int)(secs % 60);
    if (y >= 1950 && y < 2050) {
        s[0] = (char)('0' + y / 10 % 10);
        s[1] = (char)('0' + y % 10);
        int i = 2;
        s[i++] = (char)('0' + m / 10); s[i++] = (char)('0' + m % 10);
        s[i++] = (char)('0' + d / 10); s[i++] = (char)('0' + d % 10);
        s[i++] = (char)('0' + hh / 10); s[i++] = (char)('0' + hh % 10);
        s[i++] = (char)('0' + mi / 10); s[i++] = (char)('0' + mi % 10);
        s[i++] = (char)('0' + ss / 10); s[i++] = (char)('0' + ss % 10);
        s[i++] = 'Z';
        w_tlv(w, 0x17, s, (size_t)i);
    } else {
        if (y < 0 || y > 9999) {
            w->err = 1;
            return;
        }
        int i = 0;
        s[i++] = (char)('0' + y / 1000); s[i++] = (char)('0' + y / 100 % 10);
        s[i++] = (char)('0' + y / 10 % 10); s[i++] = (char)('0' + y % 10);
        s[i++] = (char)('0' + m / 10); s[i++] = (char)('0' + m % 10);
        s[i++] = (char)('0' + d / 10); s[i++] = (char)('0' + d % 10);
        s[i++] = (char)('0' + hh / 10); s[i++] = (char)('0' + hh % 10);
        s[i++] = (char)('0' + mi / 10); s[i++] = (char)('0' + mi % 10);
        s[i++] = (char)('0' + ss / 10); s[i++] = (char)('0' + ss % 10);
        s[i++] = 'Z';
        w_tlv(w, 0x18, s, (size_t)i);
    }
}

static void w_spki(struct wr *w, const fc_key *key)
{
    unsigned char *p = NULL, point[133];
    size_t plen = 0;
    int n;
    if (key->type == FC_P256 || key->type == FC_P384) {
        /* By hand: libcrypto 3.0's encoder costs more than the whole certificate. */
        unsigned char *mark = w->p, *bits;
        if (!EVP_PKEY_get_octet_string_param(key->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                             point, sizeof point, &plen) ||
            plen != (key->type == FC_P256 ? 65u : 97u)) {
            w->err = 1;
            return;
        }
        bits = w->p;
        w_raw(w, point, plen);
        w_byte(w, 0);
        w_wrap(w, bits, 0x03);
        if (key->type == FC_P256)
            w_raw(w, KEY_P256, sizeof KEY_P256);
        else
            w_raw(w, KEY_P384, sizeof KEY_P384);
        w_wrap(w, mark, 0x30);
        return;
    }
    n = i2d_PUBKEY(key->pkey, &p);
    if (n <= 0) {
        w->err = 1;
        return;
    }
    w_raw(w, p, (size_t)n);
    OPENSSL_free(p);
}

/* One extension: OID, BOOLEAN TRUE when critical, and the OCTET STRING around what was
   written since `mark` (the extension's value). */
static void w_ext(struct wr *w, unsigned char *value_mark, const unsigned char *oid, size_t oidlen,
                  int critical, unsigned char *ext_mark)
{
    w_wrap(w, value_mark, 0x04);
    if (critical)
        w_raw(w, "\x01\x01\xff", 3);
    w_tlv(w, 0x06, oid, oidlen);
    w_wrap(w, ext_mark, 0x30);
}

static const unsigned char *alg_of(const fc_key *key, size_t *n)
{
    if (key->type == FC_RSA) {
        *n = sizeof ALG_RSA_SHA256;
        return ALG_RSA_SHA256;
    }
    if (key->type == FC_P384) {
        *n = sizeof ALG_ECDSA_SHA384;
        return ALG_ECDSA_SHA384;
    }
    *n = sizeof ALG_ECDSA_SHA256;
    return ALG_ECDSA_SHA256;
}

/* SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature } into out. */
static int sign_der(const fc_key *key, const unsigned char *tbs, size_t tbslen, unsigned char *out,
                    size_t cap, size_t *outlen)
{
    unsigned char sig[1100];
    size_t siglen = sizeof sig, algn;
    const unsigned char *alg = alg_of(key, &algn);
    struct wr w;
    unsigned char *mark;
    int r;
    if (key->type == FC_RSA && EVP_PKEY_get_size(key->pkey) > (int)sizeof sig - 1)
        return FC_EKEY;
    if ((r = sign(key, key_md(key), tbs, tbslen, sig, &siglen)) < 0)
        return r;
    /* Exact size: header(s) + tbs + alg + bit string. */
    size_t bits = 1 + siglen, inner = tbslen + algn + 1 + (bits < 0x80 ? 1 : bits < 0x100 ? 2 : 3) + bits;
    size_t total = 1 + (inner < 0x80 ? 1 : inner < 0x100 ? 2 : inner < 0x10000 ? 3 : 4) + inner;
    *outlen = total;
    if (total > cap)
        return FC_ESPACE;
    w.buf = out;
    w.p = out + total;
    w.err = 0;
    mark = w.p;
    {
        unsigned char *bmark = w.p;
        w_raw(&w, sig, siglen);
        w_byte(&w, 0);
        w_wrap(&w, bmark, 0x03);
    }
    w_raw(&w, alg, algn);
    w_raw(&w, tbs, tbslen);
    w_wrap(&w, mark, 0x30);
    if (w.err || w.p != out)
        return FC_ECRYPTO;
    return (int)total;
}

static const unsigned char OID_ACME_ID[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f};

int fc_alpn_cert(const fc_key *key, int san_type, const unsigned char *san, size_t san_len,
                 const unsigned char *digest, const unsigned char *serial, size_t serial_len,
                 long long not_before, long long not_after,
                 unsigned char *out, size_t cap, size_t *outlen)
{
    unsigned char scratch[2048];
    struct wr w = {scratch, scratch + sizeof scratch, 0};
    unsigned char *tbs_mark, *exts_mark, *seq_mark, *ext_mark, *val_mark, *m;
    size_t algn;
    const unsigned char *alg;
    *outlen = 0;
    if (key == NULL || key->type != FC_P256)
        return FC_EKEY;
    if (san_len > 1024 || serial_len < 1 || serial_len > 20 ||
        (san_type == FC_NAME_IP && san_len != 4 && san_len != 16) ||
        (san_type != FC_NAME_IP && san_type != FC_NAME_DNS))
        return FC_EARG;
    alg = alg_of(key, &algn);
    tbs_mark = w.p;
    /* [3] { SEQUENCE { SAN, acmeIdentifier } } */
    exts_mark = w.p;
    seq_mark = w.p;
    ext_mark = w.p;
    val_mark = w.p;
    w_tlv(&w, 0x04, digest, 32);
    w_ext(&w, val_mark, OID_ACME_ID, sizeof OID_ACME_ID, 1, ext_mark);
    ext_mark = w.p;
    val_mark = w.p;
    m = w.p;
    w_tlv(&w, san_type == FC_NAME_IP ? 0x87 : 0x82, san, san_len);
    w_wrap(&w, m, 0x30);
    w_ext(&w, val_mark, XO_SAN, sizeof XO_SAN, 1, ext_mark);
    w_wrap(&w, seq_mark, 0x30);
    w_wrap(&w, exts_mark, 0xa3);
    w_spki(&w, key);
    w_raw(&w, "\x30\x00", 2); /* subject */
    m = w.p;
    w_time(&w, not_after);
    w_time(&w, not_before);
    w_wrap(&w, m, 0x30);
    w_raw(&w, "\x30\x00", 2); /* issuer */
    w_raw(&w, alg, algn);
    w_uint(&w, serial, serial_len);
    w_raw(&w, V3, sizeof V3);
    w_wrap(&w, tbs_mark, 0x30);
    if (w.err)
        return FC_EARG;
    return sign_der(key, w.p, (size_t)(tbs_mark - w.p), out, cap, outlen);
}

static const unsigned char OID_EXT_REQ[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};

int fc_csr(const fc_key *key, const unsigned char *cn, size_t cn_len, int nnames,
           const int *types, const unsigned char **names, const size_t *name_lens,
           int key_usage, int status_req, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t room = 4096 + cn_len, algn;
    unsigned char *scratch;
    struct wr w;
    unsigned char *info_mark, *m, *ext_mark, *val_mark, *attr_mark, *set_mark, *exts_mark;
    int r;
    *outlen = 0;
    if (key == NULL || key->type < 0)
        return FC_EKEY;
    if (nnames < 1 || nnames > 100000 || cn_len > 1024 || key_usage < 0 || key_usage > 2)
        return FC_EARG;
    for (int i = 0; i < nnames; i++) {
        if (name_lens[i] > 1024 || (types[i] != FC_NAME_DNS && types[i] != FC_NAME_IP) ||
            (types[i] == FC_NAME_IP && name_lens[i] != 4 && name_lens[i] != 16))
            return FC_EARG;
        room += name_lens[i] + 4;
    }
    (void)alg_of(key, &algn);
    if ((scratch = malloc(room)) == NULL)
        return FC_ECRYPTO;
    w.buf = scratch;
    w.p = scratch + room;
    w.err = 0;
    info_mark = w.p;
    /* [0] { SEQUENCE { extensionRequest, SET { SEQUENCE { extensions } } } } */
    attr_mark = w.p;
    m = w.p;
    set_mark = w.p;
    exts_mark = w.p;
    if (status_req) {
        ext_mark = w.p;
        val_mark = w.p;
        w_raw(&w, "\x30\x03\x02\x01\x05", 5);
        w_ext(&w, val_mark, XO_TLSF, sizeof XO_TLSF, 0, ext_mark);
    }
    if (key_usage) {
        ext_mark = w.p;
        val_mark = w.p;
        w_raw(&w, key_usage == 2 ? "\x03\x02\x05\xa0" : "\x03\x02\x07\x80", 4);
        w_ext(&w, val_mark, XO_KU, sizeof XO_KU, 1, ext_mark);
    }
    ext_mark = w.p;
    val_mark = w.p;
    {
        unsigned char *sm = w.p;
        for (int i = nnames - 1; i >= 0; i--)
            w_tlv(&w, types[i] == FC_NAME_IP ? 0x87 : 0x82, names[i], name_lens[i]);
        w_wrap(&w, sm, 0x30);
    }
    w_ext(&w, val_mark, XO_SAN, sizeof XO_SAN, 0, ext_mark);
    w_wrap(&w, exts_mark, 0x30);
    w_wrap(&w, set_mark, 0x31);
    w_tlv(&w, 0x06, OID_EXT_REQ, sizeof OID_EXT_REQ);
    w_wrap(&w, m, 0x30);
    w_wrap(&w, attr_mark, 0xa0);
    w_spki(&w, key);
    m = w.p;
    if (cn_len > 0) {
        unsigned char *rdn = w.p, *atv;
        atv = w.p;
        w_tlv(&w, 0x0c, cn, cn_len);
        w_tlv(&w, 0x06, OID_CN, sizeof OID_CN);
        w_wrap(&w, atv, 0x30);
        w_wrap(&w, rdn, 0x31);
    }
    w_wrap(&w, m, 0x30);
    w_raw(&w, "\x02\x01\x00", 3);
    w_wrap(&w, info_mark, 0x30);
    r = w.err ? FC_EARG : sign_der(key, w.p, (size_t)(info_mark - w.p), out, cap, outlen);
    free(scratch);
    return r;
}
