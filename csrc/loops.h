/* The loops of csrc/_kernels.pyx that are written in C: the matrix products
 * of a batch of one row (with the optimizer steps fused into them), sigmoid,
 * and Adam's update.
 *
 * Training one sample at a time multiplies a row vector by each weight
 * matrix W (n_in x n_out, row-major) and updates W by a rank-1 product. BLAS
 * would pack W before each such product; these loops stream it once.
 *
 * Products x W go over the columns in blocks whose width is a compile-time
 * constant at each call (CYMLP_COLUMN_BLOCKS), so that the block's sums stay
 * in registers while the rows of W stream by, however narrow the layer.
 *
 * The public functions are compiled for AVX-512, AVX2 and the portable
 * baseline, picked at load time by the CPU (GCC/Clang function
 * multiversioning on x86-64 Linux; elsewhere only the baseline). The build
 * turns off multiply-add contraction and every sum keeps its order, so every
 * CPU computes the same bits. No two pointer arguments ever overlap.
 *
 * One macro body serves float and double (CYMLP_ROW_PRODUCTS(float), ...).
 */
#ifndef CYMLP_LOOPS_H
#define CYMLP_LOOPS_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* CYMLP_BASELINE_ONLY (a build option) compiles the portable baseline alone:
   CI compares its results with the multiversioned build's, bit for bit. */
/* CYMLP_NO_CLONES: set by CMakeLists.txt when this toolchain cannot build
   target_clones (it needs ifunc: no musl libc, no Mach-O, no MSVC). */
#if !defined(CYMLP_BASELINE_ONLY) && !defined(CYMLP_NO_CLONES) && defined(__x86_64__) \
    && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define CYMLP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CYMLP_CLONES
#endif

/* C99's restrict: MSVC's C compiler knows it only from /std:c11 on, and
   spells it __restrict before. */
#if defined(_MSC_VER) && !defined(__clang__) \
    && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
#define restrict __restrict
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CYMLP_INLINE static inline __attribute__((always_inline))
#else
#define CYMLP_INLINE static inline
#endif

/* Column blocks: vectors of 64 bytes with GCC/Clang vector extensions (each
   lane is the same scalar arithmetic: the same bits; one AVX-512 register,
   two AVX2 ones), which keep the block's sums in registers; plain loops with
   other compilers. */
#if defined(__GNUC__) || defined(__clang__)
#define CYMLP_VECTORS 1
typedef float cymlp_vector_float __attribute__((vector_size(64), aligned(4), may_alias));
typedef double cymlp_vector_double __attribute__((vector_size(64), aligned(8), may_alias));
#define CYMLP_VECTOR_CODE(...) __VA_ARGS__
#else
#define CYMLP_VECTORS 0
#define CYMLP_VECTOR_CODE(...)
#endif

/* Calls BLOCK(j0, vectors, width) for consecutive column blocks covering
   n_out columns: blocks of 4 vectors (256 bytes), then of one vector, then
   the rest (vectors 0, fewer columns than a vector holds), each with
   constant arguments. */
#define CYMLP_COLUMN_BLOCKS(T, n_out, BLOCK)                                    \
    do {                                                                        \
        const Py_ssize_t lanes_ = 64 / sizeof(T);                               \
        Py_ssize_t j0_ = 0;                                                     \
        for (; j0_ + 4 * lanes_ <= (n_out); j0_ += 4 * lanes_)                  \
            BLOCK(j0_, 4, 4 * lanes_);                                          \
        for (; j0_ + lanes_ <= (n_out); j0_ += lanes_)                          \
            BLOCK(j0_, 1, lanes_);                                              \
        switch ((n_out) - j0_) {                                                \
        case 15: BLOCK(j0_, 0, 15); break;                                      \
        case 14: BLOCK(j0_, 0, 14); break;                                      \
        case 13: BLOCK(j0_, 0, 13); break;                                      \
        case 12: BLOCK(j0_, 0, 12); break;                                      \
        case 11: BLOCK(j0_, 0, 11); break;                                      \
        case 10: BLOCK(j0_, 0, 10); break;                                      \
        case 9: BLOCK(j0_, 0, 9); break;                                        \
        case 8: BLOCK(j0_, 0, 8); break;                                        \
        case 7: BLOCK(j0_, 0, 7); break;                                        \
        case 6: BLOCK(j0_, 0, 6); break;                                        \
        case 5: BLOCK(j0_, 0, 5); break;                                        \
        case 4: BLOCK(j0_, 0, 4); break;                                        \
        case 3: BLOCK(j0_, 0, 3); break;                                        \
        case 2: BLOCK(j0_, 0, 2); break;                                        \
        case 1: BLOCK(j0_, 0, 1); break;                                        \
        default: break;                                                         \
        }                                                                       \
    } while (0)

#define CYMLP_ROW_PRODUCTS(T)                                                   \
/* x . y with four partial sums, in the order of _kernels.pyx's dot. */        \
CYMLP_INLINE T row_dot_##T(Py_ssize_t n, const T *restrict x,                  \
                           const T *restrict y) {                              \
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                           \
    Py_ssize_t j = 0;                                                           \
    for (; j + 3 < n; j += 4) {                                                 \
        s0 += x[j] * y[j];                                                      \
        s1 += x[j + 1] * y[j + 1];                                              \
        s2 += x[j + 2] * y[j + 2];                                              \
        s3 += x[j + 3] * y[j + 3];                                              \
    }                                                                           \
    for (; j < n; j++)                                                          \
        s0 += x[j] * y[j];                                                      \
    return (s0 + s1) + (s2 + s3);                                               \
}                                                                               \
                                                                                \
/* z[j] = sum over i, in order, of x[i] w[i * stride + j], for j < width     \
   (``vectors`` vectors of columns, or width scalars when it is 0). */         \
CYMLP_INLINE void columns_product_##T(                                         \
        Py_ssize_t n_in, Py_ssize_t stride, int vectors, Py_ssize_t width,     \
        const T *restrict x, const T *restrict w, T *restrict z) {             \
    Py_ssize_t i, j;                                                            \
    int k;                                                                      \
    if (CYMLP_VECTORS && vectors > 0) {                                         \
        CYMLP_VECTOR_CODE(                                                      \
        cymlp_vector_##T sums[4];                 /* at most 256 bytes */       \
        for (k = 0; k < vectors; k++)                                           \
            sums[k] = (cymlp_vector_##T){0};                                    \
        for (i = 0; i < n_in; i++) {                                            \
            const T xi = x[i];                                                  \
            const cymlp_vector_##T *row = (const cymlp_vector_##T *)(w + i * stride); \
            for (k = 0; k < vectors; k++)                                       \
                sums[k] += xi * row[k];                                         \
        }                                                                       \
        for (k = 0; k < vectors; k++)                                           \
            ((cymlp_vector_##T *)z)[k] = sums[k];                               \
        )                                                                       \
        return;                                                                 \
    }                                                                           \
    T sums[256 / sizeof(T)];                                                    \
    for (j = 0; j < width; j++)                                                 \
        sums[j] = 0;                                                            \
    for (i = 0; i < n_in; i++) {                                                \
        const T xi = x[i], *row = w + i * stride;                               \
        for (j = 0; j < width; j++)                                             \
            sums[j] += xi * row[j];                                             \
    }                                                                           \
    for (j = 0; j < width; j++)                                                 \
        z[j] = sums[j];                                                         \
}                                                                               \
                                                                                \
/* columns_product after the step w[i, j] += alpha x[i] delta[j], for the     \
   same columns: z[j] sums x_next[i] times the updated w[i, j]. */            \
CYMLP_INLINE void columns_step_##T(                                            \
        Py_ssize_t n_in, Py_ssize_t stride, int vectors, Py_ssize_t width,     \
        T alpha, const T *restrict x, const T *restrict delta, T *restrict w,  \
        const T *restrict x_next, T *restrict z) {                             \
    Py_ssize_t i, j;                                                            \
    int k;                                                                      \
    if (CYMLP_VECTORS && vectors > 0) {                                         \
        CYMLP_VECTOR_CODE(                                                      \
        cymlp_vector_##T d[4], sums[4];                                         \
        for (k = 0; k < vectors; k++) {                                         \
            d[k] = ((const cymlp_vector_##T *)delta)[k];                        \
            sums[k] = (cymlp_vector_##T){0};                                    \
        }                                                                       \
        for (i = 0; i < n_in; i++) {                                            \
            cymlp_vector_##T *row = (cymlp_vector_##T *)(w + i * stride);       \
            const T scale = alpha * x[i], xi = x_next[i];                       \
            for (k = 0; k < vectors; k++) {                                     \
                const cymlp_vector_##T updated = row[k] + scale * d[k];         \
                row[k] = updated;                                               \
                sums[k] += xi * updated;                                        \
            }                                                                   \
        }                                                                       \
        for (k = 0; k < vectors; k++)                                           \
            ((cymlp_vector_##T *)z)[k] = sums[k];                               \
        )                                                                       \
        return;                                                                 \
    }                                                                           \
    T d[256 / sizeof(T)], sums[256 / sizeof(T)];                                \
    for (j = 0; j < width; j++) {                                               \
        d[j] = delta[j];                                                        \
        sums[j] = 0;                                                            \
    }                                                                           \
    for (i = 0; i < n_in; i++) {                                                \
        T *row = w + i * stride;                                                \
        const T scale = alpha * x[i], xi = x_next[i];                           \
        for (j = 0; j < width; j++) {                                           \
            const T updated = row[j] + scale * d[j];                            \
            row[j] = updated;                                                   \
            sums[j] += xi * updated;                                            \
        }                                                                       \
    }                                                                           \
    for (j = 0; j < width; j++)                                                 \
        z[j] = sums[j];                                                         \
}                                                                               \
                                                                                \
/* z = x W. */                                                                  \
CYMLP_CLONES static void row_times_matrix_##T(                                 \
        Py_ssize_t n_in, Py_ssize_t n_out, const T *restrict x,                \
        const T *restrict w, T *restrict z) {                                  \
    CYMLP_COLUMN_BLOCKS(T, n_out, CYMLP_PRODUCT_BLOCK_##T);                     \
}                                                                               \
                                                                                \
/* The backward products of one layer for one row, in one pass over W:       \
   delta_prev = W delta (W as it was before the step; skipped when           \
   delta_prev is NULL), and then either W += alpha a_prev^T delta (grad       \
   NULL: plain SGD, applied on the fly) or grad = a_prev^T delta. */          \
CYMLP_CLONES static void row_backward_##T(                                     \
        Py_ssize_t n_in, Py_ssize_t n_out, T alpha, const T *restrict a_prev,  \
        const T *restrict delta, T *restrict w, T *restrict grad,              \
        T *restrict delta_prev) {                                              \
    Py_ssize_t i, j;                                                            \
    for (i = 0; i < n_in; i++) {                                                \
        T *row = w + i * n_out;                                                 \
        if (delta_prev != NULL)                                                 \
            delta_prev[i] = row_dot_##T(n_out, delta, row);                     \
        if (grad == NULL) {                                                     \
            const T scale = alpha * a_prev[i];                                  \
            for (j = 0; j < n_out; j++)                                         \
                row[j] += scale * delta[j];                                     \
        } else {                                                                \
            T *grad_row = grad + i * n_out;                                     \
            const T scale = a_prev[i];                                          \
            for (j = 0; j < n_out; j++)                                         \
                grad_row[j] = scale * delta[j];                                 \
        }                                                                       \
    }                                                                           \
}                                                                               \
                                                                                \
/* Plain SGD on the first layer fused with the next sample's first product:   \
   W += alpha x^T delta, then z_next = x_next W with W as it is after that    \
   step, in one pass over W (the next forward pass starts from z_next). The   \
   same operations in the same order as row_backward followed by              \
   row_times_matrix, so the same bits; W is read once instead of twice. */    \
CYMLP_CLONES static void first_layer_step_##T(                                 \
        Py_ssize_t n_in, Py_ssize_t n_out, T alpha, const T *restrict x,       \
        const T *restrict delta, T *restrict w, const T *restrict x_next,      \
        T *restrict z_next) {                                                  \
    CYMLP_COLUMN_BLOCKS(T, n_out, CYMLP_STEP_BLOCK_##T);                        \
}

#define CYMLP_PRODUCT_BLOCK_float(j0, vectors, width) \
    columns_product_float(n_in, n_out, vectors, width, x, w + (j0), z + (j0))
#define CYMLP_PRODUCT_BLOCK_double(j0, vectors, width) \
    columns_product_double(n_in, n_out, vectors, width, x, w + (j0), z + (j0))
#define CYMLP_STEP_BLOCK_float(j0, vectors, width) \
    columns_step_float(n_in, n_out, vectors, width, alpha, x, delta + (j0), w + (j0), \
                       x_next, z_next + (j0))
#define CYMLP_STEP_BLOCK_double(j0, vectors, width) \
    columns_step_double(n_in, n_out, vectors, width, alpha, x, delta + (j0), w + (j0), \
                        x_next, z_next + (j0))

CYMLP_ROW_PRODUCTS(float)
CYMLP_ROW_PRODUCTS(double)

/* x, or +0 where x is zero or subnormal (its exponent bits are all 0).
   Moments and momentum buffers that decay below the normal range are
   flushed so: subnormal arithmetic is many times slower, and they are far
   below any effect on the weights. Integer operations only, so the loop
   around it still vectorises (a comparison there would stop GCC). */
#define CYMLP_FLUSH(T, BITS, EXPONENT)                                          \
CYMLP_INLINE T flush_##T(T x) {                                                 \
    BITS bits, exponent;                                                        \
    memcpy(&bits, &x, sizeof bits);                                             \
    exponent = bits & EXPONENT;                                                 \
    /* (e | -e) has its top bit set exactly when e != 0. */                    \
    bits &= (BITS)0 - ((exponent | ((BITS)0 - exponent)) >> (8 * sizeof(BITS) - 1)); \
    memcpy(&x, &bits, sizeof x);                                                \
    return x;                                                                   \
}
CYMLP_FLUSH(float, uint32_t, 0x7F800000u)
CYMLP_FLUSH(double, uint64_t, 0x7FF0000000000000ull)

/* exp(x) for x <= 0 (and NaN), as sigmoid needs it, in plain arithmetic
   that vectorises: x = k ln 2 + r with |r| <= ln(2) / 2, exp(r) from its
   Taylor polynomial (degree 13 for double, 7 for float: truncation below
   half an ulp), times 2^k applied as two normal powers of two (so results
   in the subnormal range round once). Within about an ulp of the correctly
   rounded value; the same bits on every CPU. NaN stays NaN. */
#define CYMLP_EXP_NONPOSITIVE(T, BITS, MANTISSA, BIAS, FLOOR, LN2_HI, LN2_LO, TERMS) \
CYMLP_INLINE T exp_nonpositive_##T(T x) {                                      \
    const T shifter = (T)1.5 * (T)((BITS)1 << MANTISSA);                        \
    BITS shifter_bits, k1_bits, k2_bits, s1_bits, s2_bits;                      \
    T s1, s2, k1, k2, t1, t2;                                                   \
    x = x < FLOOR ? FLOOR : x;                 /* exp(FLOOR) rounds to 0 */    \
    const T t = x * (T)1.4426950408889634 + shifter;   /* k = round(x / ln 2) */ \
    const T k = t - shifter;                                                    \
    const T r = (x - k * LN2_HI) - k * LN2_LO;                                  \
    const T r2 = r * r, r4 = r2 * r2;                                           \
    T p = TERMS;                                                                \
    /* 2^k = 2^k1 2^k2 with k1 = round(k / 2) and k2 = k - k1. */              \
    t1 = k * (T)0.5 + shifter;                                                  \
    k1 = t1 - shifter;                                                          \
    k2 = k - k1;                                                                \
    t2 = k2 + shifter;                                                          \
    memcpy(&shifter_bits, &shifter, sizeof shifter_bits);                       \
    memcpy(&k1_bits, &t1, sizeof k1_bits);                                      \
    memcpy(&k2_bits, &t2, sizeof k2_bits);                                      \
    s1_bits = (k1_bits - shifter_bits + BIAS) << MANTISSA;                      \
    s2_bits = (k2_bits - shifter_bits + BIAS) << MANTISSA;                      \
    memcpy(&s1, &s1_bits, sizeof s1);                                           \
    memcpy(&s2, &s2_bits, sizeof s2);                                           \
    return p * s1 * s2;                                                         \
}
/* The Taylor polynomial of exp(r) by Estrin's scheme: independent partial
   sums of powers of r, so that its latency (what a narrow layer waits on)
   is a few operations rather than one per degree. */
/* (The small terms are summed first and 1 is added last, which keeps the
   rounding error near half an ulp.) */
#define CYMLP_TAYLOR_DOUBLE                                                     \
    (1 + (r + (r2 * (1.0 / 2 + r * (1.0 / 6))                                  \
               + (r4 * ((1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040))) \
                  + r4 * r4 * ((1.0 / 40320 + r * (1.0 / 362880))               \
                               + r2 * (1.0 / 3628800 + r * (1.0 / 39916800))    \
                               + r4 * (1.0 / 479001600 + r * (1.0 / 6227020800)))))))
#define CYMLP_TAYLOR_FLOAT                                                      \
    (1 + (r + (r2 * (1.0f / 2 + r * (1.0f / 6))                                \
               + r4 * ((1.0f / 24 + r * (1.0f / 120)) + r2 * (1.0f / 720 + r * (1.0f / 5040))))))
CYMLP_EXP_NONPOSITIVE(float, uint32_t, 23, 127, -104.0f, 0.693145751953125f,
                      1.428606765330187e-06f, CYMLP_TAYLOR_FLOAT)
CYMLP_EXP_NONPOSITIVE(double, uint64_t, 52, 1023, -746.0, 0.693147180369123816490,
                      1.90821492927058770002e-10, CYMLP_TAYLOR_DOUBLE)

/* a = 1 / (1 + exp(-z)) in place, written so that exp never overflows:
   exp(-|z|), then 1 / (1 + e) for z >= 0 and e / (1 + e) below. Blocks of
   16, the last one padded, so that narrow layers are one vector pass too. */
#define CYMLP_SIGMOID(T)                                                        \
CYMLP_INLINE T sigmoid_one_##T(T z) {                                          \
    const T e = exp_nonpositive_##T(z >= 0 ? -z : z);                           \
    return (z >= 0 ? (T)1 : e) / (1 + e);                                       \
}                                                                               \
CYMLP_CLONES static void sigmoid_##T(Py_ssize_t n, T *restrict a) {            \
    Py_ssize_t i = 0, j;                                                        \
    for (; i + 16 <= n; i += 16)                                                \
        for (j = 0; j < 16; j++)                                                \
            a[i + j] = sigmoid_one_##T(a[i + j]);                               \
    if (i < n) {                                                                \
        T block[16] = {0};                                                      \
        for (j = 0; j < n - i; j++)                                             \
            block[j] = a[i + j];                                                \
        for (j = 0; j < 16; j++)                                                \
            block[j] = sigmoid_one_##T(block[j]);                               \
        for (j = 0; j < n - i; j++)                                             \
            a[i + j] = block[j];                                                \
    }                                                                           \
}
CYMLP_SIGMOID(float)
CYMLP_SIGMOID(double)

CYMLP_INLINE float sqrt_float(float x) { return sqrtf(x); }
CYMLP_INLINE double sqrt_double(double x) { return sqrt(x); }

/* Adam's update of one parameter p with gradient g (torch.optim.Adam), in
   the parameters' precision as torch computes it, with the step's constants
   (from double) rounded to it: (p, m, v) are updated in place. torch divides
   sqrt(v) by sqrt(1 - beta2^t); multiplying by the reciprocal saves a
   division per parameter and differs only in the last bit. */
#define CYMLP_ADAM_ONE(T)                                                       \
CYMLP_INLINE void adam_one_##T(T g, T *p, T *m, T *v, T keep1, T beta2,        \
                               T keep2, T step_size, T correction, T eps) {    \
    const T moment = *m + keep1 * (g - *m);                                     \
    const T variance = beta2 * *v + keep2 * g * g;                              \
    *m = flush_##T(moment);                                                     \
    *v = flush_##T(variance);                                                   \
    *p = *p - step_size * (moment / (sqrt_##T(variance) * correction + eps));   \
}
CYMLP_ADAM_ONE(float)
CYMLP_ADAM_ONE(double)

/* Adam's update of n parameters, bound by a square root and a division per
   parameter. */
#define CYMLP_ADAM_UPDATE(T)                                                    \
CYMLP_CLONES static void adam_update_##T(                                      \
        Py_ssize_t n, T *restrict params, const T *restrict grad,              \
        T *restrict first, T *restrict second, double beta1, double beta2,     \
        double step_size, double inverse_correction2, double eps) {            \
    const T keep1 = (T)(1 - beta1), beta2_ = (T)beta2, keep2 = (T)(1 - beta2); \
    const T size = (T)step_size, correction = (T)inverse_correction2, eps_ = (T)eps; \
    for (Py_ssize_t i = 0; i < n; i++)                                          \
        adam_one_##T(grad[i], params + i, first + i, second + i, keep1, beta2_, \
                     keep2, size, correction, eps_);                            \
}
CYMLP_ADAM_UPDATE(float)
CYMLP_ADAM_UPDATE(double)

/* One optimizer step of torch.optim.SGD (with momentum or weight decay) or
   torch.optim.Adam, as _kernels.pyx's optimizer_step takes it. */
enum { CYMLP_STEP_SGD = 0, CYMLP_STEP_MOMENTUM = 1, CYMLP_STEP_NESTEROV = 2, CYMLP_STEP_ADAM = 3 };
typedef struct {
    int kind;
    double learning_rate, momentum, weight_decay;    /* SGD's, rounded to T when used */
    double beta1, beta2, step_size, inverse_correction2, eps;   /* Adam's, this step */
} cymlp_step;

/* One row's backward products and optimizer step on one layer, in one pass
   over W: delta_prev = W delta (W before the step; skipped when delta_prev is
   NULL), then every weight steps with its gradient g = a_prev[i] delta[j]
   (plus weight_decay W[i, j]), its moments in first and second (laid out as
   W). The same operations as row_backward's gradient followed by
   optimizer_step, so the same bits; the gradient is never stored. A bias is
   a layer of one input, 1. */
#define CYMLP_ROW_OPTIMIZER(T)                                                  \
CYMLP_CLONES static void row_optimizer_##T(                                    \
        Py_ssize_t n_in, Py_ssize_t n_out, const T *restrict a_prev,           \
        const T *restrict delta, T *restrict w, T *restrict first,             \
        T *restrict second, T *restrict delta_prev, const cymlp_step *step) {  \
    const T learning_rate = (T)step->learning_rate, momentum = (T)step->momentum; \
    const T weight_decay = (T)step->weight_decay;                               \
    const T keep1 = (T)(1 - step->beta1), beta2 = (T)step->beta2;              \
    const T keep2 = (T)(1 - step->beta2), eps = (T)step->eps;                   \
    const T step_size = (T)step->step_size, correction = (T)step->inverse_correction2; \
    const int kind = step->kind;                                                \
    Py_ssize_t i, j;                                                            \
    for (i = 0; i < n_in; i++) {                                                \
        T *row = w + i * n_out, *m = first + i * n_out, *v = second + i * n_out; \
        const T scale = a_prev[i];                                              \
        if (delta_prev != NULL)                                                 \
            delta_prev[i] = row_dot_##T(n_out, delta, row);                     \
        if (kind == CYMLP_STEP_ADAM) {                                          \
            for (j = 0; j < n_out; j++) {                                       \
                T gradient = scale * delta[j];                                  \
                if (weight_decay != 0)                                          \
                    gradient += weight_decay * row[j];                          \
                adam_one_##T(gradient, row + j, m + j, v + j, keep1, beta2, keep2, \
                             step_size, correction, eps);                       \
            }                                                                   \
        } else if (kind == CYMLP_STEP_SGD) {                                    \
            for (j = 0; j < n_out; j++) {                                       \
                T gradient = scale * delta[j];                                  \
                if (weight_decay != 0)                                          \
                    gradient += weight_decay * row[j];                          \
                row[j] -= learning_rate * gradient;                             \
            }                                                                   \
        } else {                                                                \
            const int nesterov = kind == CYMLP_STEP_NESTEROV;                   \
            for (j = 0; j < n_out; j++) {                                       \
                T gradient = scale * delta[j];                                  \
                if (weight_decay != 0)                                          \
                    gradient += weight_decay * row[j];                          \
                m[j] = flush_##T(momentum * m[j] + gradient);                   \
                row[j] -= learning_rate * (nesterov ? gradient + momentum * m[j] : m[j]); \
            }                                                                   \
        }                                                                       \
    }                                                                           \
}
CYMLP_ROW_OPTIMIZER(float)
CYMLP_ROW_OPTIMIZER(double)

#endif
