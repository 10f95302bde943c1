/* Native (C) sampling loop for sketch-rnn decoders: one whole sketch per call, float32.
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
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SK_HAVE_F16 1
#else
#define SK_HAVE_F16 0
#endif
#include <stdlib.h>
#include <string.h>

#define SK_ABI_VERSION 2

typedef struct {
    int32_t kind;  /* 0 lstm, 1 layer_norm, 2 hyper */
    int32_t H;     /* decoder units (multiple of 8) */
    int32_t Nh;    /* hyper units (hyper; multiple of 8), else 0 */
    int32_t E;     /* hyper embedding size (hyper; multiple of 8), else 0 */
    int32_t M;     /* mixture components */
    int32_t n_y;   /* head outputs padded to a multiple of 8 (>= 6M + 3) */
    int32_t half;  /* 1: the panel matrices hold IEEE float16 bits (uint16), see sk_has_f16 */
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
#endif

/* out += u @ W for a panel of the model (float32 or float16 storage) */
static void panel_acc(const SkModel *m, const void *w, const float *u, float *out, int n_in, int n_out) {
#if SK_HAVE_F16
    if (m->half) {
        matvec_acc_f16((const uint16_t *)w, u, out, n_in, n_out);
        return;
    }
#endif
    matvec_acc((const float *)w, u, out, n_in, n_out);
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
    float *g;    /* (4K) */
    float *tc;   /* (max(H, Nh)) */
    float *ghh;  /* (4H) hyper: h @ W_hh */
    float *gx;   /* (4H) hyper: x @ W_ih */
    float *zs;   /* (12E) */
    float *s12;  /* (12H) */
    float *y;    /* (n_y) */
} SkState;

static void cell_step(const SkModel *m, SkState *st, const float *zc, const float *xz, const float *x5) {
    const int H = m->H, Nh = m->Nh;
    if (m->kind != 2) {
        const int G = 4 * H;
        memcpy(st->g, zc, sizeof(float) * G);
        panel_acc(m, m->wu, st->u, st->g, H, G);
        add_x5(st->g, m->w5, x5, G);
        if (m->kind == 1) {
            for (int b = 0; b < 4; b++) layer_norm(st->g + b * H, m->ln_g + b * H, m->ln_b + b * H, H);
        }
        lstm_tail(st->g, st->c, st->u, st->tc, H, m->kind == 1 ? m->lnc_g : NULL, m->lnc_b);
        return;
    }
    /* HyperLSTM (Ha, Dai & Le 2016): products of the OLD h and of x first */
    const int G = 4 * H, E = m->E;
    memset(st->ghh, 0, sizeof(float) * G);
    panel_acc(m, m->whh, st->u, st->ghh, H, G);
    memcpy(st->gx, xz, sizeof(float) * G);
    add_x5(st->gx, m->wx5, x5, G);
    /* hyper cell: LayerNorm LSTM on [h, hyper_h, x] with its own state */
    const int Gh = 4 * Nh;
    memcpy(st->g, zc, sizeof(float) * Gh);
    panel_acc(m, m->wu, st->u, st->g, H + Nh, Gh);
    add_x5(st->g, m->w5, x5, Gh);
    for (int b = 0; b < 4; b++) layer_norm(st->g + b * Nh, m->ln_g + b * Nh, m->ln_b + b * Nh, Nh);
    float *hh = st->u + H;
    lstm_tail(st->g, st->hc, hh, st->tc, Nh, m->lnc_g, m->lnc_b);
    /* embeddings of the new hyper_h -> per-unit scales of every gate block */
    memset(st->zs, 0, sizeof(float) * 12 * E);
    panel_acc(m, m->wzs, hh, st->zs, Nh, 12 * E);
    memcpy(st->s12, m->bblk, sizeof(float) * 12 * H);
    for (int k = 0; k < 12; k++)
        panel_acc(m, (const char *)m->wblk + (size_t)k * E * H * (m->half ? 2 : 4), st->zs + k * E, st->s12 + k * H,
                  E, H);
    float *pre = st->g;  /* reuse: (4H) >= (4Nh) is guaranteed by the buffer size */
    for (int b = 0; b < 4; b++) {
        const float *ax = st->s12 + b * H, *ah = st->s12 + (4 + b) * H, *bh = st->s12 + (8 + b) * H;
        const float *gx = st->gx + b * H, *gh = st->ghh + b * H;
        float *p = pre + b * H;
        for (int k = 0; k < H; k++) p[k] = ax[k] * gx[k] + ah[k] * gh[k] + bh[k];
        layer_norm(p, m->m_g + b * H, m->m_b + b * H, H);
    }
    lstm_tail(pre, st->c, st->u, st->tc, H, m->mc_g, m->mc_b);
}

/* ------------------------------------------------------------------ sketch loop */
/* Returns the number of points (the end index), or -1 if out of memory.
 * zc: (4K) z-part + bias of the u-matmul; xz: (4H) hyper main-cell z-part (else NULL);
 * state0: (c | h | hyper_c | hyper_h); prefix5: (P, 5) inputs after the start token;
 * U, N: this sketch's (max_len, 2) uniforms / normals, rows rstride floats apart (NULL if greedy);
 * pts: (max_len, 3) out: dx, dy, pen lifted. */
int sk_decode(const SkModel *m, const float *zc, const float *xz, const float *state0, const float *prefix5,
              int P, int max_len, int allow_end, int first_no_end, int greedy, double inv_tau, double sf,
              const float *U, const float *N, long rstride, float *pts) {
    const int H = m->H, Nh = m->Nh, E = m->E, M = m->M;
    const int K = m->kind == 2 ? Nh : H;
    const int big = H > Nh ? H : Nh;  /* g holds the gates of either cell */
    (void)K;
    size_t n = (size_t)(H + Nh) + H + Nh + 5 * (size_t)big + 8 * (size_t)H + 12 * (size_t)E + 12 * (size_t)H +
               m->n_y + 64;
    float *buf = (float *)calloc(n, sizeof(float));
    if (!buf) return -1;
    SkState st;
    float *p = buf;
    st.u = p; p += H + Nh;
    st.c = p; p += H;
    st.hc = p; p += Nh;
    st.g = p; p += 4 * (size_t)big;
    st.tc = p; p += big;
    st.ghh = p; p += 4 * (size_t)H;
    st.gx = p; p += 4 * (size_t)H;
    st.zs = p; p += 12 * (size_t)E;
    st.s12 = p; p += 12 * (size_t)H;
    st.y = p;
    memcpy(st.c, state0, sizeof(float) * H);
    memcpy(st.u, state0 + H, sizeof(float) * H);
    if (m->kind == 2) {
        memcpy(st.hc, state0 + 2 * H, sizeof(float) * Nh);
        memcpy(st.u + H, state0 + 2 * H + Nh, sizeof(float) * Nh);
    }
    float x5[5] = {0.0f, 0.0f, 1.0f, 0.0f, 0.0f};  /* start token */
    for (int t = 0; t < P; t++) {
        cell_step(m, &st, zc, xz, x5);
        memcpy(x5, prefix5 + 5 * (size_t)t, sizeof x5);
    }
    const int c_mx = 3 + M, c_my = 3 + 2 * M, c_sx = 3 + 3 * M, c_sy = 3 + 4 * M, c_rr = 3 + 5 * M;
    double e[64];
    double *ebuf = M > 64 ? (double *)malloc(sizeof(double) * M) : e;
    if (!ebuf) {
        free(buf);
        return -1;
    }
    int end = max_len;
    for (int t = 0; t < max_len; t++) {
        cell_step(m, &st, zc, xz, x5);
        memcpy(st.y, m->bout, sizeof(float) * m->n_y);
        panel_acc(m, m->wout, st.u, st.y, H, m->n_y);
        const float *y = st.y;
        const int no_end = !allow_end || (t == 0 && first_no_end);
        const int npen = no_end ? 2 : 3;
        int k = 0, pen = 0;
        if (greedy) {
            for (int j = 1; j < M; j++)
                if (y[3 + j] > y[3 + k]) k = j;
            for (int j = 1; j < npen; j++)
                if (y[j] > y[pen]) pen = j;
        } else {
            const float *u = U + (size_t)t * rstride;
            double mx = y[3];
            for (int j = 1; j < M; j++) mx = y[3 + j] > mx ? y[3 + j] : mx;
            double tot = 0.0;
            for (int j = 0; j < M; j++) {
                ebuf[j] = exp(((double)y[3 + j] - mx) * inv_tau);
                tot += ebuf[j];
            }
            double target = (double)u[0] * tot, acc = 0.0;
            for (k = 0; k < M; k++) {  /* inverse CDF: first k with cdf_k >= u * total */
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
            const float *nr = N + (size_t)t * rstride;
            const double e0 = nr[0], e1 = nr[1];
            const double sx = exp((double)y[c_sx + k]) * sf, sy = exp((double)y[c_sy + k]) * sf;
            const double rho = tanh((double)y[c_rr + k]);
            const double q = 1.0 - rho * rho;
            dx = dx + sx * e0;
            dy = dy + sy * (rho * e0 + sqrt(q > 0.0 ? q : 0.0) * e1);
        }
        pts[3 * (size_t)t] = (float)dx;
        pts[3 * (size_t)t + 1] = (float)dy;
        pts[3 * (size_t)t + 2] = pen == 1 ? 1.0f : 0.0f;
        if (pen == 2) {
            end = t;
            break;
        }
        x5[0] = (float)dx;
        x5[1] = (float)dy;
        x5[2] = pen == 0;
        x5[3] = pen == 1;
        x5[4] = pen == 2;
    }
    if (ebuf != e) free(ebuf);
    free(buf);
    return end;
}
