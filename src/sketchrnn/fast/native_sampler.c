/* Native (C) sampling loop for sketch-rnn decoders: one whole sketch per call, float32.
 * (At the end: the elementwise steps of the CPU training path's plain LSTM, sk_lstm_fw/bw.)
 *
 * The same function as the NumPy sampler in sampler.py (and so as the plain oracle,
 * sketchrnn.api.decode(fast=False)): gate blocks in the order (i, f, o, j), forget bias
 * folded into the bias / layer-norm shift, the z-part of the input projection precomputed
 * per sketch (Ha & Eck 2017, Eq. 3-4), the mixture index and the pen state drawn by inverse
 * CDF from one uniform each, the offset from two standard normals (Graves 2013, Sec. 4.1).
 *
 * Why C: at batch 1 a 512-unit decoder step is one 517 x 2048 matrix-vector product
 * (4.2 MB of float32 weights, streamed from L3 at ~50 GB/s: ~80 us) plus ~40 small
 * operations; from Python each small operation costs 1-5 us, which is as much again.
 * Here the whole loop runs without returning to Python.
 *
 * Weight matrices come in "panel" layout: for each block of 8 input rows, for each chunk
 * of 8 outputs, the 8 x 8 values row-major. The matrix-vector product then reads the
 * weights strictly sequentially (hardware prefetch) and the inner loop is 8 independent
 * lanes the compiler vectorises (AVX2 / NEON) without reassociating any sum.
 * exp / tanh are Cephes-style polynomials (float32, ~1-2 ulp) written as branch-free
 * loops so that they vectorise too. Models whose weights are float16 values already (the
 * shipped ones, `sketchrnn export` output) stream float16 panels on x86 (F16C): the same
 * products from half the bytes.
 *
 * Built on first use by sketchrnn.fast.native (the system C compiler, -O3 -march=native),
 * cached per machine; without a compiler the NumPy sampler runs instead.
 */
#include <math.h>
#include <stdint.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SK_HAVE_AVX2 1
#else
#define SK_HAVE_AVX2 0
#endif
#if SK_HAVE_AVX2 && defined(__F16C__)
#define SK_HAVE_F16 1
#else
#define SK_HAVE_F16 0
#endif
#include <stdlib.h>
#include <string.h>

#define SK_ABI_VERSION 4

typedef struct {
    int32_t kind;  /* 0 lstm, 1 layer_norm, 2 hyper */
    int32_t H;     /* decoder units (multiple of 8) */
    int32_t Nh;    /* hyper units (hyper; multiple of 8), else 0 */
    int32_t E;     /* hyper embedding size (hyper; multiple of 8), else 0 */
    int32_t M;     /* mixture components */
    int32_t n_y;   /* head outputs padded to a multiple of 8 (>= 6M + 3) */
    int32_t half;  /* bit 0: the panel matrices hold IEEE float16 bits (uint16), see sk_has_f16;
                      bit 1: except wout, kept float (models that ship their mixture head float32) */
    /* gate matmul of the cell that reads u = [h | hyper_h]: K = H (lstm, layer_norm) or Nh.
       Panels (wu, wout, whh, wzs, wblk) are float, or uint16 float16 bits when half = 1. */
    const void *wu;       /* panel (H + Nh, 4K) */
    const float *w5;      /* (5, 4K) rows for x5 = (dx, dy, p1, p2, p3) */
    const float *ln_g;    /* (4K) gate-block layer norm gain (layer_norm, hyper cell) */
    const float *ln_b;    /* (4K) shift, forget bias folded into block f */
    const float *lnc_g;   /* (K) layer norm of c */
    const float *lnc_b;
    const void *wout;     /* panel (H, n_y) */
    const float *bout;    /* (n_y) */
    /* HyperLSTM main cell */
    const void *whh;      /* panel (H, 4H) */
    const float *wx5;     /* (5, 4H) */
    const void *wzs;      /* panel (Nh, 12E): hyper_h -> [x_zw | h_zw | h_zb] embeddings */
    const void *wblk;     /* 12 panels (E, H): embedding -> per-unit scale of each gate block */
    const float *bblk;    /* (12, H) */
    const float *m_g;     /* (4H) main layer norm gain */
    const float *m_b;     /* (4H) main layer norm shift (+ forget bias on f) */
    const float *mc_g;    /* (H) */
    const float *mc_b;
} SkModel;

int sk_abi_version(void) { return SK_ABI_VERSION; }

/* 1 when float16 panels are supported (x86 F16C + AVX2 + FMA at build time) */
int sk_has_f16(void) { return SK_HAVE_F16; }

/* ------------------------------------------------------------------ elementwise */
static inline float sk_exp(float x) {
    /* Cephes expf: x = n ln2 + r (Cody-Waite), e^r by a degree-6 polynomial, times 2^n */
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return y * s;
}

static inline float sk_tanh(float x) {
    /* Cephes tanhf: odd polynomial for |x| < 0.625, else 1 - 2 / (e^{2|x|} + 1) */
    float a = fabsf(x);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (sk_exp(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

static inline float sk_sigmoid(float x) { return 1.0f / (1.0f + sk_exp(-x)); }

static void sigmoid_inplace(float *restrict v, int n) {
    for (int i = 0; i < n; i++) v[i] = sk_sigmoid(v[i]);
}

static void tanh_inplace(float *restrict v, int n) {
    for (int i = 0; i < n; i++) v[i] = sk_tanh(v[i]);
}

/* out += u @ W, W in panel layout (n_in x n_out, both multiples of 8) */
static void matvec_acc(const float *restrict w, const float *restrict u, float *restrict out, int n_in, int n_out) {
    for (int i = 0; i < n_in; i += 8) {
        const float u0 = u[i], u1 = u[i + 1], u2 = u[i + 2], u3 = u[i + 3];
        const float u4 = u[i + 4], u5 = u[i + 5], u6 = u[i + 6], u7 = u[i + 7];
        for (int j = 0; j < n_out; j += 8, w += 64) {
            float *restrict o = out + j;
            for (int c = 0; c < 8; c++) {
                float a = u0 * w[c] + u2 * w[16 + c] + u4 * w[32 + c] + u6 * w[48 + c];
                float b = u1 * w[8 + c] + u3 * w[24 + c] + u5 * w[40 + c] + u7 * w[56 + c];
                o[c] += a + b;
            }
        }
    }
}

#if SK_HAVE_AVX2
/* out[b][j:j+8] += u[b][i:i+8] @ tile for every vector b: one 8 x 8 weight tile (rows w0..w7,
   already in registers) applied to nb vectors */
static inline void tile_to_vectors(__m256 w0, __m256 w1, __m256 w2, __m256 w3, __m256 w4, __m256 w5, __m256 w6,
                                   __m256 w7, float *const *u, float *const *out, int nb, int i, int j) {
    for (int b = 0; b < nb; b++) {
        const float *ub = u[b] + i;
        __m256 a = _mm256_mul_ps(_mm256_set1_ps(ub[0]), w0);
        __m256 d = _mm256_mul_ps(_mm256_set1_ps(ub[1]), w1);
        a = _mm256_fmadd_ps(_mm256_set1_ps(ub[2]), w2, a);
        d = _mm256_fmadd_ps(_mm256_set1_ps(ub[3]), w3, d);
        a = _mm256_fmadd_ps(_mm256_set1_ps(ub[4]), w4, a);
        d = _mm256_fmadd_ps(_mm256_set1_ps(ub[5]), w5, d);
        a = _mm256_fmadd_ps(_mm256_set1_ps(ub[6]), w6, a);
        d = _mm256_fmadd_ps(_mm256_set1_ps(ub[7]), w7, d);
        float *o = out[b] + j;
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_add_ps(a, d)));
    }
}
#endif

/* out[b] += u[b] @ W for nb vectors: each weight tile is read once for all of them */
static void matvec_acc_multi(const float *restrict w, float *const *u, float *const *out, int nb, int n_in,
                             int n_out) {
    if (nb == 1) {
        matvec_acc(w, u[0], out[0], n_in, n_out);
        return;
    }
#if SK_HAVE_AVX2  /* the tile in 8 registers, reused for every vector */
    for (int i = 0; i < n_in; i += 8) {
        for (int j = 0; j < n_out; j += 8, w += 64) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), w2 = _mm256_loadu_ps(w + 16);
            const __m256 w3 = _mm256_loadu_ps(w + 24), w4 = _mm256_loadu_ps(w + 32), w5 = _mm256_loadu_ps(w + 40);
            const __m256 w6 = _mm256_loadu_ps(w + 48), w7 = _mm256_loadu_ps(w + 56);
            tile_to_vectors(w0, w1, w2, w3, w4, w5, w6, w7, u, out, nb, i, j);
        }
    }
#else
    for (int b = 0; b < nb; b++) matvec_acc(w, u[b], out[b], n_in, n_out);
#endif
}

#if SK_HAVE_F16
/* The same product with float16 weights (exactly widened to float32 by vcvtph2ps): half the
   bytes to stream. Used only for models whose weights are float16 values already (shipped
   and exported models), so the products are the float32 kernel's. */
#define SK_LDH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
static void matvec_acc_f16(const uint16_t *restrict w, const float *restrict u, float *restrict out, int n_in,
                           int n_out) {
    for (int i = 0; i < n_in; i += 8) {
        const __m256 u0 = _mm256_set1_ps(u[i]), u1 = _mm256_set1_ps(u[i + 1]), u2 = _mm256_set1_ps(u[i + 2]),
                     u3 = _mm256_set1_ps(u[i + 3]), u4 = _mm256_set1_ps(u[i + 4]), u5 = _mm256_set1_ps(u[i + 5]),
                     u6 = _mm256_set1_ps(u[i + 6]), u7 = _mm256_set1_ps(u[i + 7]);
        for (int j = 0; j < n_out; j += 8, w += 64) {
            __m256 a = _mm256_mul_ps(u0, SK_LDH(w));
            __m256 b = _mm256_mul_ps(u1, SK_LDH(w + 8));
            a = _mm256_fmadd_ps(u2, SK_LDH(w + 16), a);
            b = _mm256_fmadd_ps(u3, SK_LDH(w + 24), b);
            a = _mm256_fmadd_ps(u4, SK_LDH(w + 32), a);
            b = _mm256_fmadd_ps(u5, SK_LDH(w + 40), b);
            a = _mm256_fmadd_ps(u6, SK_LDH(w + 48), a);
            b = _mm256_fmadd_ps(u7, SK_LDH(w + 56), b);
            _mm256_storeu_ps(out + j, _mm256_add_ps(_mm256_loadu_ps(out + j), _mm256_add_ps(a, b)));
        }
    }
}

static void matvec_acc_f16_multi(const uint16_t *restrict w, float *const *u, float *const *out, int nb, int n_in,
                                 int n_out) {
    if (nb == 1) {
        matvec_acc_f16(w, u[0], out[0], n_in, n_out);
        return;
    }
    for (int i = 0; i < n_in; i += 8) {
        for (int j = 0; j < n_out; j += 8, w += 64) {
            const __m256 w0 = SK_LDH(w), w1 = SK_LDH(w + 8), w2 = SK_LDH(w + 16), w3 = SK_LDH(w + 24);
            const __m256 w4 = SK_LDH(w + 32), w5 = SK_LDH(w + 40), w6 = SK_LDH(w + 48), w7 = SK_LDH(w + 56);
            tile_to_vectors(w0, w1, w2, w3, w4, w5, w6, w7, u, out, nb, i, j);
        }
    }
}
#endif

/* out[b] += u[b] @ W (b < nb) for a panel (float32 storage, or float16 when half) */
static void panel_acc_as(int half, const void *w, float *const *u, float *const *out, int nb, int n_in,
                         int n_out) {
#if SK_HAVE_F16
    if (half) {
        matvec_acc_f16_multi((const uint16_t *)w, u, out, nb, n_in, n_out);
        return;
    }
#endif
    matvec_acc_multi((const float *)w, u, out, nb, n_in, n_out);
}

static void panel_acc(const SkModel *m, const void *w, float *const *u, float *const *out, int nb, int n_in,
                      int n_out) {
    panel_acc_as(m->half & 1, w, u, out, nb, n_in, n_out);
}

/* v = (v - mean) / sqrt(var + eps) * g + b over n values (Magenta layer_norm, eps 1e-3) */
static void layer_norm(float *restrict v, const float *restrict g, const float *restrict b, int n) {
    float s[8] = {0}, q[8] = {0};
    for (int i = 0; i < n; i += 8)
        for (int c = 0; c < 8; c++) s[c] += v[i + c];
    double mean = 0.0;
    for (int c = 0; c < 8; c++) mean += s[c];
    mean /= n;
    const float m = (float)mean;
    for (int i = 0; i < n; i += 8)
        for (int c = 0; c < 8; c++) {
            float d = v[i + c] - m;
            q[c] += d * d;
        }
    double var = 0.0;
    for (int c = 0; c < 8; c++) var += q[c];
    var /= n;
    const float inv = (float)(1.0 / sqrt(var + 1e-3));
    for (int i = 0; i < n; i++) v[i] = (v[i] - m) * inv * g[i] + b[i];
}

/* x5 rows: g += dx W5[0] + dy W5[1] + W5[2 + pen] */
static void add_x5(float *restrict g, const float *restrict w5, const float *x5, int n) {
    const float dx = x5[0], dy = x5[1];
    const float *r0 = w5, *r1 = w5 + n;
    for (int i = 0; i < n; i++) g[i] += dx * r0[i] + dy * r1[i];
    for (int k = 2; k < 5; k++)
        if (x5[k] != 0.0f) {
            const float p = x5[k], *r = w5 + (size_t)k * n;
            for (int i = 0; i < n; i++) g[i] += p * r[i];
        }
}

/* gates g = (i, f, o, j) blocks of K (already normalised where needed) -> c, h */
static void lstm_tail(float *restrict g, float *restrict c, float *restrict h, float *restrict tc, int K,
                      const float *lnc_g, const float *lnc_b) {
    sigmoid_inplace(g, 3 * K);
    tanh_inplace(g + 3 * K, K);
    const float *gi = g, *gf = g + K, *go = g + 2 * K, *gj = g + 3 * K;
    for (int k = 0; k < K; k++) c[k] = c[k] * gf[k] + gi[k] * gj[k];
    memcpy(tc, c, sizeof(float) * K);
    if (lnc_g) layer_norm(tc, lnc_g, lnc_b, K);
    tanh_inplace(tc, K);
    for (int k = 0; k < K; k++) h[k] = tc[k] * go[k];
}

/* ------------------------------------------------------------------ one step */
typedef struct {
    float *u;    /* [h (H) | hyper_h (Nh)] */
    float *c;    /* (H) */
    float *hc;   /* (Nh) hyper c */
    float *g;    /* (4 max(H, Nh)) gates */
    float *tc;   /* (max(H, Nh)) */
    float *ghh;  /* (4H) hyper: h @ W_hh */
    float *gx;   /* (4H) hyper: x @ W_ih */
    float *zs;   /* (12E) */
    float *s12;  /* (12H) */
    float *y;    /* (n_y) */
    const float *zc, *xz;  /* this sketch's z-part of the u-matmul (4K) and of the hyper main cell (4H) */
    float x5[5];  /* this step's input */
} SkState;

typedef struct {  /* pointer lists of the active sketches, for the batched products */
    float **a, **b;
} SkPtrs;

/* One recurrent step for the active sketches st[act[0..na-1]]. */
static void cell_step(const SkModel *m, SkState *st, const int *act, int na, SkPtrs *p) {
    const int H = m->H, Nh = m->Nh;
#define EACH for (int q = 0; q < na; q++)
#define S (st[act[q]])
    if (m->kind != 2) {
        const int G = 4 * H;
        EACH {
            memcpy(S.g, S.zc, sizeof(float) * G);
            p->a[q] = S.u;
            p->b[q] = S.g;
        }
        panel_acc(m, m->wu, p->a, p->b, na, H, G);
        EACH {
            add_x5(S.g, m->w5, S.x5, G);
            if (m->kind == 1)
                for (int k = 0; k < 4; k++) layer_norm(S.g + k * H, m->ln_g + k * H, m->ln_b + k * H, H);
            lstm_tail(S.g, S.c, S.u, S.tc, H, m->kind == 1 ? m->lnc_g : NULL, m->lnc_b);
        }
        return;
    }
    /* HyperLSTM (Ha, Dai & Le 2016): products of the OLD h and of x first */
    const int G = 4 * H, E = m->E, Gh = 4 * Nh;
    EACH {
        memset(S.ghh, 0, sizeof(float) * G);
        p->a[q] = S.u;
        p->b[q] = S.ghh;
    }
    panel_acc(m, m->whh, p->a, p->b, na, H, G);
    EACH {
        memcpy(S.gx, S.xz, sizeof(float) * G);
        add_x5(S.gx, m->wx5, S.x5, G);
        /* hyper cell: LayerNorm LSTM on [h, hyper_h, x] with its own state */
        memcpy(S.g, S.zc, sizeof(float) * Gh);
        p->b[q] = S.g;
    }
    panel_acc(m, m->wu, p->a, p->b, na, H + Nh, Gh);
    EACH {
        add_x5(S.g, m->w5, S.x5, Gh);
        for (int k = 0; k < 4; k++) layer_norm(S.g + k * Nh, m->ln_g + k * Nh, m->ln_b + k * Nh, Nh);
        lstm_tail(S.g, S.hc, S.u + H, S.tc, Nh, m->lnc_g, m->lnc_b);
        /* embeddings of the new hyper_h -> per-unit scales of every gate block */
        memset(S.zs, 0, sizeof(float) * 12 * E);
        memcpy(S.s12, m->bblk, sizeof(float) * 12 * H);
        p->a[q] = S.u + H;
        p->b[q] = S.zs;
    }
    panel_acc(m, m->wzs, p->a, p->b, na, Nh, 12 * E);
    const size_t blk = (size_t)E * H * ((m->half & 1) ? 2 : 4);  /* bytes of one of the 12 (E, H) panels */
    for (int k = 0; k < 12; k++) {
        EACH {
            p->a[q] = S.zs + k * E;
            p->b[q] = S.s12 + k * H;
        }
        panel_acc(m, (const char *)m->wblk + k * blk, p->a, p->b, na, E, H);
    }
    EACH {
        float *pre = S.g;  /* (4H) fits: g holds 4 max(H, Nh) */
        for (int k = 0; k < 4; k++) {
            const float *ax = S.s12 + k * H, *ah = S.s12 + (4 + k) * H, *bh = S.s12 + (8 + k) * H;
            const float *gx = S.gx + k * H, *gh = S.ghh + k * H;
            float *pk = pre + k * H;
            for (int i = 0; i < H; i++) pk[i] = ax[i] * gx[i] + ah[i] * gh[i] + bh[i];
            layer_norm(pk, m->m_g + k * H, m->m_b + k * H, H);
        }
        lstm_tail(pre, S.c, S.u, S.tc, H, m->mc_g, m->mc_b);
    }
#undef EACH
#undef S
}

/* The mixture index k and the pen state by inverse CDF on one uniform each, then the offset
   (as sampler._loop_scalar, in double precision). */
static void sample_point(const float *y, int M, int npen, int greedy, double inv_tau, double sf, const float *u,
                         const float *nr, double *ebuf, double *dx_out, double *dy_out, int *pen_out) {
    const int c_mx = 3 + M, c_my = 3 + 2 * M, c_sx = 3 + 3 * M, c_sy = 3 + 4 * M, c_rr = 3 + 5 * M;
    int k = 0, pen = 0;
    if (greedy) {
        for (int j = 1; j < M; j++)
            if (y[3 + j] > y[3 + k]) k = j;
        for (int j = 1; j < npen; j++)
            if (y[j] > y[pen]) pen = j;
    } else {
        double mx = y[3];
        for (int j = 1; j < M; j++) mx = y[3 + j] > mx ? y[3 + j] : mx;
        double tot = 0.0;
        for (int j = 0; j < M; j++) {
            ebuf[j] = exp(((double)y[3 + j] - mx) * inv_tau);
            tot += ebuf[j];
        }
        double target = (double)u[0] * tot, acc = 0.0;
        for (k = 0; k < M; k++) {  /* first k with cdf_k >= u * total */
            acc += ebuf[k];
            if (acc >= target) break;
        }
        if (k == M) k = M - 1;
        double pm = y[0];
        for (int j = 1; j < npen; j++) pm = y[j] > pm ? y[j] : pm;
        double ep[3];
        tot = 0.0;
        for (int j = 0; j < npen; j++) {
            ep[j] = exp(((double)y[j] - pm) * inv_tau);
            tot += ep[j];
        }
        target = (double)u[1] * tot;
        acc = 0.0;
        for (pen = 0; pen < npen; pen++) {
            acc += ep[pen];
            if (acc >= target) break;
        }
        if (pen == npen) pen = npen - 1;
    }
    double dx = y[c_mx + k], dy = y[c_my + k];
    if (!greedy) {
        const double e0 = nr[0], e1 = nr[1];
        const double sx = exp((double)y[c_sx + k]) * sf, sy = exp((double)y[c_sy + k]) * sf;
        const double rho = tanh((double)y[c_rr + k]);
        const double q = 1.0 - rho * rho;
        dx = dx + sx * e0;
        dy = dy + sy * (rho * e0 + sqrt(q > 0.0 ? q : 0.0) * e1);
    }
    *dx_out = dx;
    *dy_out = dy;
    *pen_out = pen;
}

/* ------------------------------------------------------------------ sketch loop */
/* B sketches at once (each weight tile read once per step for all unfinished sketches).
 * zc: (B, 4K) z-part + bias of the u-matmul; xz: (B, 4H) hyper main-cell z-part (else NULL);
 * state0: (B, S) with S = c | h | hyper_c | hyper_h; prefix5: (P, 5) inputs after the start
 * token, the same for every sketch; U, N: (max_len, B, 2) uniforms / normals (NULL if greedy);
 * pts: (B, max_len, 3) out: dx, dy, pen lifted; ends: (B) out: points per sketch.
 * Returns 0, or -1 when out of memory. */
int sk_decode_batch(const SkModel *m, int B, const float *zc, const float *xz, const float *state0,
                    const float *prefix5, int P, int max_len, int allow_end, int first_no_end, int greedy,
                    double inv_tau, double sf, const float *U, const float *N, float *pts, int *ends) {
    const int H = m->H, Nh = m->Nh, E = m->E, M = m->M;
    const int K = m->kind == 2 ? Nh : H, big = H > Nh ? H : Nh;
    const size_t S = 2 * (size_t)H + 2 * (size_t)Nh;
    const size_t per = (size_t)(H + Nh) + H + Nh + 5 * (size_t)big + 8 * (size_t)H + 12 * (size_t)E +
                       12 * (size_t)H + m->n_y + 16;
    float *buf = (float *)calloc(per * (size_t)B, sizeof(float));
    SkState *st = (SkState *)calloc((size_t)B, sizeof(SkState));
    int *act = (int *)malloc(sizeof(int) * (size_t)B);
    float **pa = (float **)malloc(sizeof(float *) * (size_t)B), **pb = (float **)malloc(sizeof(float *) * (size_t)B);
    double *ebuf = (double *)malloc(sizeof(double) * (size_t)(M > 3 ? M : 3));
    int rc = -1;
    if (!buf || !st || !act || !pa || !pb || !ebuf) goto done;
    SkPtrs ptrs = {pa, pb};
    for (int b = 0; b < B; b++) {
        float *p = buf + per * (size_t)b;
        SkState *s = &st[b];
        s->u = p; p += H + Nh;
        s->c = p; p += H;
        s->hc = p; p += Nh;
        s->g = p; p += 4 * (size_t)big;
        s->tc = p; p += big;
        s->ghh = p; p += 4 * (size_t)H;
        s->gx = p; p += 4 * (size_t)H;
        s->zs = p; p += 12 * (size_t)E;
        s->s12 = p; p += 12 * (size_t)H;
        s->y = p;
        s->zc = zc + (size_t)b * 4 * K;
        s->xz = xz ? xz + (size_t)b * 4 * H : NULL;
        const float *s0 = state0 + (size_t)b * S;
        memcpy(s->c, s0, sizeof(float) * H);
        memcpy(s->u, s0 + H, sizeof(float) * H);
        if (m->kind == 2) {
            memcpy(s->hc, s0 + 2 * H, sizeof(float) * Nh);
            memcpy(s->u + H, s0 + 2 * H + Nh, sizeof(float) * Nh);
        }
        const float start[5] = {0.0f, 0.0f, 1.0f, 0.0f, 0.0f};
        memcpy(s->x5, start, sizeof start);
        act[b] = b;
        ends[b] = max_len;
    }
    int na = B;
    for (int t = 0; t < P; t++) {
        cell_step(m, st, act, na, &ptrs);
        for (int b = 0; b < B; b++) memcpy(st[b].x5, prefix5 + 5 * (size_t)t, sizeof(float) * 5);
    }
    for (int t = 0; t < max_len && na > 0; t++) {
        cell_step(m, st, act, na, &ptrs);
        for (int q = 0; q < na; q++) {
            memcpy(st[act[q]].y, m->bout, sizeof(float) * m->n_y);
            pa[q] = st[act[q]].u;
            pb[q] = st[act[q]].y;
        }
        panel_acc_as((m->half & 1) && !(m->half & 2), m->wout, pa, pb, na, H, m->n_y);
        const int no_end = !allow_end || (t == 0 && first_no_end);
        int kept = 0;
        for (int q = 0; q < na; q++) {
            const int b = act[q];
            SkState *s = &st[b];
            const size_t r = ((size_t)t * B + b) * 2;
            double dx, dy;
            int pen;
            sample_point(s->y, M, no_end ? 2 : 3, greedy, inv_tau, sf, greedy ? NULL : U + r, greedy ? NULL : N + r,
                         ebuf, &dx, &dy, &pen);
            float *o = pts + ((size_t)b * max_len + t) * 3;
            o[0] = (float)dx;
            o[1] = (float)dy;
            o[2] = pen == 1 ? 1.0f : 0.0f;
            if (pen == 2) {
                ends[b] = t;  /* finished: dropped from the batch */
                continue;
            }
            s->x5[0] = (float)dx;
            s->x5[1] = (float)dy;
            s->x5[2] = pen == 0;
            s->x5[3] = pen == 1;
            s->x5[4] = 0.0f;
            act[kept++] = b;
        }
        na = kept;
    }
    rc = 0;
done:
    free(buf);
    free(st);
    free(act);
    free(pa);
    free(pb);
    free(ebuf);
    return rc;
}

/* ------------------------------------------------------------------ training: LSTM step
 * The elementwise part of one step of the plain LSTM recurrence in training
 * (sketchrnn.fast.decoder._LSTMSequence), forward and backward, for R rows of H units.
 * Layout there: gate blocks (i, j, f, o) of H each per row, row-major, float32; `mask` is the
 * scaled recurrent-dropout mask on g = tanh(j) (Semeniuta et al. 2016) or NULL.
 * From Python each of these is ~15-25 small tensor operations per step. */

/* Row r of the gates gets the step's input part: I = 0: x is the projection xp (R, G) itself;
   I > 0: x (R, I) raw inputs, += b + x_r @ wx with wx (I, G) and b (G) or, b_rows > 1, (R, G). */
static void add_input_part(float *restrict ar, int r, int G, const float *restrict x, int I,
                           const float *restrict wx, const float *restrict b, int b_rows) {
    if (I == 0) {
        const float *xr = x + (size_t)r * G;
        for (int k = 0; k < G; k++) ar[k] += xr[k];
        return;
    }
    const float *xr = x + (size_t)r * I, *br = b + (b_rows > 1 ? (size_t)r * G : 0);
    for (int k = 0; k < G; k++) ar[k] += br[k];
    for (int q = 0; q < I; q++) {
        const float xq = xr[q], *wq = wx + (size_t)q * G;
        for (int k = 0; k < G; k++) ar[k] += xq * wq[k];
    }
}

/* a: in h @ W_hh (R, 4H), out [s(i), tanh(j), s(f + fb), s(o)]. Before the gate math a gets
   the step's input part: I = 0: x is xp (R, 4H), the input projection itself; I > 0: x (R, I)
   raw inputs, a += b + x @ wx with wx (I, 4H) and b (4H) or, b_rows = R, (R, 4H).
   c = c_prev s(f + fb) + s(i) tanh(j) m;  h = tanh(c) s(o). */
void sk_lstm_fw(int R, int H, float *restrict a, const float *restrict x, int I, const float *restrict wx,
                const float *restrict b, int b_rows, const float *restrict c_prev, const float *restrict mask,
                float fb, float *restrict c, float *restrict h) {
    const int G = 4 * H;
    for (int r = 0; r < R; r++) {
        float *ar = a + (size_t)r * G;
        add_input_part(ar, r, G, x, I, wx, b, b_rows);
        float *gi = ar, *gj = ar + H, *gf = ar + 2 * H, *go = ar + 3 * H;
        for (int k = 0; k < H; k++) gf[k] += fb;
        sigmoid_inplace(gi, H);
        tanh_inplace(gj, H);
        sigmoid_inplace(gf, 2 * H);  /* f and o */
        const float *cp = c_prev + (size_t)r * H, *mr = mask ? mask + (size_t)r * H : NULL;
        float *cr = c + (size_t)r * H, *hr = h + (size_t)r * H;
        for (int k = 0; k < H; k++) {
            float g = mr ? gj[k] * mr[k] : gj[k];
            cr[k] = cp[k] * gf[k] + gi[k] * g;
        }
        for (int k = 0; k < H; k++) hr[k] = sk_tanh(cr[k]) * go[k];
    }
}

/* Backward of sk_lstm_fw given dh (R, H) = dL/dh_t (all paths) and dc (R, H) = dL/dc_t from
   step t + 1; writes g (R, 4H) = dL/d(pre-activation gates) and replaces dc by dL/dc_{t-1}.
   a: the forward's activations, c_prev / c: c_{t-1} / c_t. */
void sk_lstm_bw(int R, int H, const float *restrict a, const float *restrict c_prev, const float *restrict c,
                const float *restrict mask, const float *restrict dh, float *restrict dc, float *restrict g) {
    for (int r = 0; r < R; r++) {
        const float *ar = a + (size_t)r * 4 * H;
        const float *si = ar, *tj = ar + H, *sf = ar + 2 * H, *so = ar + 3 * H;
        const float *cp = c_prev + (size_t)r * H, *cr = c + (size_t)r * H, *dhr = dh + (size_t)r * H;
        const float *mr = mask ? mask + (size_t)r * H : NULL;
        float *dcr = dc + (size_t)r * H, *gr = g + (size_t)r * 4 * H;
        for (int k = 0; k < H; k++) {
            float tc = sk_tanh(cr[k]);
            float d = dhr[k];
            float m = mr ? mr[k] : 1.0f;
            gr[3 * H + k] = d * tc * (so[k] * (1.0f - so[k]));                     /* d o */
            float dct = dcr[k] + d * so[k] * (1.0f - tc * tc);                      /* dL/dc_t */
            gr[2 * H + k] = dct * cp[k] * (sf[k] * (1.0f - sf[k]));                /* d f */
            gr[k] = dct * (tj[k] * m) * (si[k] * (1.0f - si[k]));                  /* d i */
            gr[H + k] = dct * si[k] * m * (1.0f - tj[k] * tj[k]);                  /* d j */
            dcr[k] = dct * sf[k];
        }
    }
}

/* ------------------------------------------------------------------ training: LayerNorm LSTM step
 * Magenta's LayerNormLSTMCell (sketchrnn.model.cells): per gate block (i, j, f, o) of H units a
 * layer norm (biased variance, eps) times gain g plus shift b (R rows, gates row-major), then
 * c = c_prev s(f + fb) + s(i) tanh(j) m and h = tanh(LN(c) gc + bc) s(o). The input part is
 * added first as in sk_lstm_fw (I = 0: x is the projection; else x @ wx + b_in).
 * Saved for the backward: a <- [s(i), tanh(j), s(f + fb), s(o)], xhat (R, 4H) the normalised
 * pre-activations, rs (R, 4) their 1/std, chat (R, H) the normalised c, rsc (R) its 1/std. */
static void ln_row(const float *restrict v, float *restrict vhat, int n, float eps, float *rs_out) {
    double m = 0.0, q = 0.0;
    for (int k = 0; k < n; k++) m += v[k];
    m /= n;
    for (int k = 0; k < n; k++) { double d = v[k] - m; q += d * d; }
    float r = (float)(1.0 / sqrt(q / n + eps));
    float mf = (float)m;
    for (int k = 0; k < n; k++) vhat[k] = (v[k] - mf) * r;
    *rs_out = r;
}

void sk_lnlstm_fw(int R, int H, float *restrict a, const float *restrict x, int I, const float *restrict wx,
                  const float *restrict b_in, int b_rows, const float *restrict g, const float *restrict be,
                  const float *restrict gc, const float *restrict bc, float eps, const float *restrict c_prev,
                  const float *restrict mask, float fb, float *restrict xhat, float *restrict rs,
                  float *restrict chat, float *restrict rsc, float *restrict c, float *restrict h) {
    const int G = 4 * H;
    for (int r = 0; r < R; r++) {
        float *ar = a + (size_t)r * G, *xh = xhat + (size_t)r * G;
        add_input_part(ar, r, G, x, I, wx, b_in, b_rows);
        for (int blk = 0; blk < 4; blk++) ln_row(ar + blk * H, xh + blk * H, H, eps, rs + (size_t)r * 4 + blk);
        for (int k = 0; k < G; k++) ar[k] = xh[k] * g[k] + be[k];
        float *gi = ar, *gj = ar + H, *gf = ar + 2 * H;
        for (int k = 0; k < H; k++) gf[k] += fb;
        sigmoid_inplace(gi, H);
        tanh_inplace(gj, H);
        sigmoid_inplace(gf, 2 * H);  /* f and o */
        const float *cp = c_prev + (size_t)r * H, *mr = mask ? mask + (size_t)r * H : NULL, *go = ar + 3 * H;
        float *cr = c + (size_t)r * H, *hr = h + (size_t)r * H, *ch = chat + (size_t)r * H;
        for (int k = 0; k < H; k++) {
            float gg = mr ? gj[k] * mr[k] : gj[k];
            cr[k] = cp[k] * gf[k] + gi[k] * gg;
        }
        ln_row(cr, ch, H, eps, rsc + r);
        for (int k = 0; k < H; k++) hr[k] = sk_tanh(ch[k] * gc[k] + bc[k]) * go[k];
    }
}

/* Backward of sk_lnlstm_fw: dh (R, H), dc (R, H) in: dL/dc_t from step t + 1, out: dL/dc_{t-1};
   writes dpre (R, 4H) = dL/d(pre-norm gates) and ADDS the gain / shift gradients of this step
   into dg, dbe (4H) and dgc, dbc (H). tmp: scratch of 4H + H floats. */
static void ln_row_backward(const float *restrict dxh, const float *restrict xh, float r, int n,
                            float *restrict dx) {
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < n; k++) { s1 += dxh[k]; s2 += (double)dxh[k] * xh[k]; }
    float m1 = (float)(s1 / n), m2 = (float)(s2 / n);
    for (int k = 0; k < n; k++) dx[k] = r * (dxh[k] - m1 - xh[k] * m2);
}

void sk_lnlstm_bw(int R, int H, const float *restrict a, const float *restrict xhat, const float *restrict rs,
                  const float *restrict chat, const float *restrict rsc, const float *restrict g,
                  const float *restrict gc, const float *restrict bc, const float *restrict c_prev,
                  const float *restrict mask, const float *restrict dh, float *restrict dc, float *restrict dpre,
                  float *restrict dg, float *restrict dbe, float *restrict dgc, float *restrict dbc,
                  float *restrict tmp) {
    const int G = 4 * H;
    float *dn = tmp, *dch = tmp + G;
    for (int r = 0; r < R; r++) {
        const float *ar = a + (size_t)r * G, *xh = xhat + (size_t)r * G;
        const float *si = ar, *tj = ar + H, *sf = ar + 2 * H, *so = ar + 3 * H;
        const float *ch = chat + (size_t)r * H, *cp = c_prev + (size_t)r * H, *dhr = dh + (size_t)r * H;
        const float *mr = mask ? mask + (size_t)r * H : NULL;
        float *dcr = dc + (size_t)r * H, *dp = dpre + (size_t)r * G;
        for (int k = 0; k < H; k++) {  /* h = tanh(cn) s(o), cn = chat gc + bc */
            float t = sk_tanh(ch[k] * gc[k] + bc[k]);
            float d = dhr[k];
            dn[3 * H + k] = d * t * (so[k] * (1.0f - so[k]));
            float dcn = d * so[k] * (1.0f - t * t);
            dgc[k] += dcn * ch[k];
            dbc[k] += dcn;
            dch[k] = dcn * gc[k];
        }
        float *dcl = dp;  /* scratch: dL/dc through the layer norm, before dp is written */
        ln_row_backward(dch, ch, rsc[r], H, dcl);
        for (int k = 0; k < H; k++) {
            float m = mr ? mr[k] : 1.0f;
            float dct = dcr[k] + dcl[k];
            dn[2 * H + k] = dct * cp[k] * (sf[k] * (1.0f - sf[k]));
            dn[k] = dct * (tj[k] * m) * (si[k] * (1.0f - si[k]));
            dn[H + k] = dct * si[k] * m * (1.0f - tj[k] * tj[k]);
            dcr[k] = dct * sf[k];
        }
        for (int k = 0; k < G; k++) {
            dg[k] += dn[k] * xh[k];
            dbe[k] += dn[k];
            dn[k] *= g[k];  /* now dL/dxhat */
        }
        for (int blk = 0; blk < 4; blk++)
            ln_row_backward(dn + blk * H, xh + blk * H, rs[(size_t)r * 4 + blk], H, dp + blk * H);
    }
}
