/* wucme certificate scan (native/certscan.h): the repository scan's reading of a chain.
 *
 * It reads PEM and DER itself (no libcrypto) and answers only for chains it understands
 * completely: strict DER, the algorithms and extensions ACME CAs use, each checked at
 * least as strictly as `cryptography` (and the `pem` crate under it) checks them.
 * Anything else, every malformed input included, is CS_EUNSUPP and the Python twin
 * (wucme/_native/certscan_pure.py) decides, so the two never disagree on what a file
 * means; tests/unit/test_native_crypto.py compares them and fuzzes this code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certscan.h"

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

static void add_name(struct cs_cert *out, const unsigned char *base, int type, const struct der *v,
                     int *full)
{
    if (out->nnames >= CS_MAX_NAMES) {
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
static int parse_name(struct der *d, struct cs_cert *out, const unsigned char *base)
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
                add_name(out, base, CS_NAME_CN, &val, &full);
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

static int ext_san(struct der v, struct cs_cert *out, const unsigned char *base)
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
                add_name(out, base, CS_NAME_DNS, &gn, &full);
            break;
        case 0x87: /* iPAddress */
            if (der_len(&gn) != 4 && der_len(&gn) != 16)
                return -1;
            if (out != NULL)
                add_name(out, base, CS_NAME_IP, &gn, &full);
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

static int ext_aki(struct der v, struct cs_cert *out, const unsigned char *base)
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
static int parse_extensions(struct der *d, struct cs_cert *out, const unsigned char *base)
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
static int parse_cert(const unsigned char *der, size_t len, struct cs_cert *out)
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

int cs_cert_scan(const unsigned char *pem, size_t len, unsigned char *der, size_t cap,
                 struct cs_cert *out)
{
    const unsigned char *p = pem, *e = pem + len;
    size_t used = 0; /* der[0 .. used) holds the leaf; later blocks are decoded after it */
    int ncerts = 0, seen_key = 0;
    b64_init();
    if (cap < len || out == NULL)
        return CS_EUNSUPP;
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
            return CS_EUNSUPP;
        label = p + 11;
        if ((lend = find(label, e, "-----")) == NULL || (body = eol(lend + 5, e)) == NULL)
            return CS_EUNSUPP;
        lablen = (size_t)(lend - label);
        is_cert = lablen == 11 && memcmp(label, "CERTIFICATE", 11) == 0;
        if (!is_cert && !(lablen == 11 && memcmp(label, "PRIVATE KEY", 11) == 0) &&
            !(lablen == 14 && memcmp(label, "EC PRIVATE KEY", 14) == 0) &&
            !(lablen == 15 && memcmp(label, "RSA PRIVATE KEY", 15) == 0))
            return CS_EUNSUPP;
        if ((end = find(body, e, "-----END ")) == NULL)
            return CS_EUNSUPP;
        if ((size_t)(e - end) < 9 + lablen + 5 || memcmp(end + 9, label, lablen) != 0 ||
            memcmp(end + 9 + lablen, "-----", 5) != 0)
            return CS_EUNSUPP;
        p = end + 9 + lablen + 5;
        if (p < e && (p = eol(p, e)) == NULL)
            return CS_EUNSUPP;
        /* Certificates first, then the key wucme appends: anything else is the twin's. */
        if ((is_cert && seen_key) || (!is_cert && ncerts == 0))
            return CS_EUNSUPP;
        if ((n = b64_decode(body, end, der + used)) < 0)
            return CS_EUNSUPP;
        if (!is_cert) {
            seen_key = 1;
            continue;
        }
        if (parse_cert(der + used, (size_t)n, ncerts == 0 ? out : NULL) < 0)
            return CS_EUNSUPP;
        if (ncerts++ == 0)
            used = (size_t)n;
    }
    return ncerts > 0 ? CS_OK : CS_EUNSUPP;
}

int cs_cert_file(const char *path, unsigned char *der, size_t cap, struct cs_cert *out)
{
    unsigned char stack[16384], *buf = stack;
    struct stat st;
    ssize_t got;
    size_t size, have = 0;
    int fd, r;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? CS_ENOENT : CS_EIO;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 24)) {
        close(fd);
        return CS_EIO;
    }
    size = (size_t)st.st_size;
    if (size > cap) {
        close(fd);
        return CS_EUNSUPP;
    }
    if (size + 1 > sizeof stack && (buf = malloc(size + 1)) == NULL) {
        close(fd);
        return CS_EIO;
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
    r = have == size ? cs_cert_scan(buf, size, der, cap, out) : CS_EIO;
    if (buf != stack)
        free(buf);
    return r;
}

/* One file's key compared with the text the index holds. */
static int same_key(int dfd, const char *name, const char *key, size_t key_len)
{
    struct stat st;
    char text[96];
    int n;

    if (fstatat(dfd, name, &st, 0) != 0)
        return 0;
    n = snprintf(text, sizeof text, "%lld,%lld,%lld,%llu", (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                 (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec,
                 (unsigned long long)st.st_ino);
    return n > 0 && (size_t)n == key_len && memcmp(text, key, key_len) == 0;
}

int cs_same_keys(int dfd, const char *part, size_t part_len, const char *ckey, size_t ckey_len,
                 const char *skey, size_t skey_len)
{
    char name[160];

    if (part_len == 0 || part_len > 128 || memchr(part, '/', part_len) || memchr(part, '\0', part_len))
        return 0;
    memcpy(name, "WUCME_C_", 8);
    memcpy(name + 8, part, part_len);
    memcpy(name + 8 + part_len, ".PEM", 5);
    if (!same_key(dfd, name, ckey, ckey_len))
        return 0;
    memcpy(name + 6, "S_", 2);
    memcpy(name + 8 + part_len, ".JSON", 6);
    return same_key(dfd, name, skey, skey_len);
}
