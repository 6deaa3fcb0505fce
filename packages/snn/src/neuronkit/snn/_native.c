/* Compiled loops of neuronkit.snn.multistep: the LIF/IF forward recurrence over T and the
 * backward's reverse-time scan, one call each instead of one to three ATen ops per time step.
 *
 * Plain C99 with no Python or torch headers: neuronkit.snn._native compiles it with the
 * system C compiler at first use and checks it bit for bit against the ATen loop before using
 * it. The arithmetic is spelled out op by op as ATen's vectorised CPU kernels do it (fused
 * multiply-adds where they use them, nothing contracted otherwise: built with
 * -ffp-contract=off). Tensors are contiguous [T, n] (n = B * ...), row t at t * n; each call
 * covers the columns [lo, hi), so callers may split n across threads. The file includes itself
 * once per dtype (float, double).
 */
#ifndef REAL
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* charge h = f(u, v): lerp(v, u, a) for |a| < 0.5 and for |a| >= 0.5 (ATen's two branches),
 * u + a * v (add with alpha or addcmul: both one fused multiply-add), u + v, and lerp with a
 * weight per column, each element taking its branch as ATen's vectorised lerp does. */
enum { LERP_SMALL, LERP_LARGE, ADD_SCALED, ADD, LERP_EACH };
/* reset after the spike s: h - s * threshold, h - s * h, (h - s * h) + s * v_reset, h. */
enum { SUBTRACT, ZERO, ZERO_TO, NONE };
/* the backward's surrogate derivative g of z = h - threshold: given in d on entry, or computed
 * as surrogate.py's built-ins round it, 1 / (c1 |z| + 1)^2 and 1 / (c1 + c2 z^2). */
enum { GIVEN, FAST_SIGMOID, ATAN };

/* The event-driven linear layer (nk_spike_linear): output columns in chunks of SPIKE_NV
 * 32-byte vectors held in registers, input rows scanned SPIKE_ROWS at a time. */
#define SPIKE_NV 8
#define SPIKE_ROWS 64
#define SPIKE_GRAD_ROWS 256 /* output-gradient rows per block of the weight gradient */

#define BLOCK 1024 /* columns whose membranes stay in a local array across all T steps */
/* The length of a local block array: at least a cache line more than the block, so that
 * arrays declared together do not sit a multiple of 4 KiB apart (contending for L1 sets). */
#define LOCAL (BLOCK + 16)

/* The backwards' variant: one case label per surrogate, reset and detach_reset, and the label
 * of a call's codes (-1 for an unknown code; "none" has no reset to detach). */
#define BACKWARD_CASE(S, R, D) (((S) * 4 + (R)) * 2 + (D))
static inline int backward_case(const int surrogate, const int reset, const int detach) {
  if (surrogate < 0 || surrogate > ATAN || reset < 0 || reset > NONE) return -1;
  return BACKWARD_CASE(surrogate, reset, detach != 0 && reset != NONE);
}

#define REAL float
#define FMA fmaf
#define FABS fabsf
#define SUFFIX(name) name##_f32
#include __FILE__
#undef REAL
#undef FMA
#undef FABS
#undef SUFFIX

#define REAL double
#define FMA fma
#define FABS fabs
#define SUFFIX(name) name##_f64
#include __FILE__

#else /* the kernels for one REAL type */

/* The charge h from the drive x and the membrane p, and the membrane after the spike; charge
 * and reset are compile-time constants after inlining. */
static inline __attribute__((always_inline)) REAL SUFFIX(charged)(const int charge, const REAL w,
                                                                  const REAL x, const REAL p) {
  switch (charge) {
    case LERP_SMALL: return FMA(w, x - p, p);
    case LERP_LARGE: return FMA(w - 1, x - p, x);
    case LERP_EACH: return FABS(w) < (REAL)0.5 ? FMA(w, x - p, p) : FMA(w - 1, x - p, x);
    case ADD_SCALED: return FMA(w, p, x);
    default: return x + p;
  }
}

/* A parameter per column: where not given per column (c NULL), a block of the scalar s. */
static inline void SUFFIX(fill)(REAL *restrict block, const REAL *c, const REAL s) {
  if (!c)
    for (int64_t i = 0; i < BLOCK; i++) block[i] = s;
}

static inline __attribute__((always_inline)) REAL SUFFIX(after_reset)(
    const int reset, const REAL h, const REAL spike, const REAL threshold, const REAL v_reset) {
  switch (reset) {
    case SUBTRACT: return h - spike * threshold;
    case ZERO: return h + (-spike) * h;
    case ZERO_TO: return (h + (-spike) * h) + v_reset * spike;
    default: return h;
  }
}

/* One step of a block of m columns: the weight and the threshold are the scalars a_s and
 * thr_s, or (cols) read per column from a and threshold. Without cols the loop reads two
 * streams fewer, which the LIF forward's L1 has no room for: a process whose arrays happen to
 * share cache sets ran about 2x slower. */
static inline __attribute__((always_inline)) void SUFFIX(step)(
    const int charge, const int reset, const int cols, const REAL *restrict u,
    REAL *restrict v, REAL *restrict s, REAL *restrict h_out, REAL *restrict v_out,
    const REAL *restrict a, const REAL *restrict threshold, const REAL a_s, const REAL thr_s,
    const int64_t m, const REAL v_reset) {
  for (int64_t i = 0; i < m; i++) {
    const REAL w = cols ? a[i] : a_s, thr = cols ? threshold[i] : thr_s;
    const REAL h = SUFFIX(charged)(charge, w, u[i], v[i]);
    const REAL spike = h >= thr ? 1 : 0;
    const REAL after = SUFFIX(after_reset)(reset, h, spike, thr, v_reset);
    s[i] = spike;
    v[i] = after;
    h_out[i] = h;
    v_out[i] = after;
  }
}

/* One vectorised loop per (charge, reset); a and the threshold: scalars, or per column [n]
 * where a_c and thr_c are given. */
static inline __attribute__((always_inline)) void SUFFIX(run)(
    const int charge, const int reset, const REAL *restrict u, REAL *restrict v_last,
    REAL *restrict s, REAL *restrict h_seq, REAL *restrict v_seq, const int64_t nt,
    const int64_t n, const int64_t lo, const int64_t hi, const REAL a_s, const REAL *a_c,
    const REAL thr_s, const REAL *thr_c, const REAL v_reset) {
  REAL v[LOCAL], h_unkept[LOCAL], v_unkept[LOCAL]; /* where unkept outputs go */
  REAL a_l[LOCAL], thr_l[LOCAL];
  const int cols = a_c || thr_c;
  if (cols) {
    SUFFIX(fill)(a_l, a_c, a_s);
    SUFFIX(fill)(thr_l, thr_c, thr_s);
  }
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *a = a_c ? a_c + b : a_l, *thr = thr_c ? thr_c + b : thr_l;
    memcpy(v, v_last + b, (size_t)m * sizeof(REAL));
    for (int64_t t = 0; t < nt; t++) {
      const int64_t row = t * n + b;
      REAL *h_out = h_seq ? h_seq + row : h_unkept, *v_out = v_seq ? v_seq + row : v_unkept;
      if (cols)
        SUFFIX(step)(charge, reset, 1, u + row, v, s + row, h_out, v_out, a, thr, a_s, thr_s, m,
                     v_reset);
      else
        SUFFIX(step)(charge, reset, 0, u + row, v, s + row, h_out, v_out, a, thr, a_s, thr_s, m,
                     v_reset);
    }
    memcpy(v_last + b, v, (size_t)m * sizeof(REAL));
  }
}

#define OUTPUTS(C, R)                                                                     \
  case C * 4 + R:                                                                         \
    SUFFIX(run)(C, R, u, v_last, s, h_seq, v_seq, nt, n, lo, hi, a, a_c, threshold, thr_c, \
                v_reset);                                                                 \
    return 0;
#define RESETS(C) OUTPUTS(C, SUBTRACT) OUTPUTS(C, ZERO) OUTPUTS(C, ZERO_TO) OUTPUTS(C, NONE)

/* The forward: spikes s [T, n]; the pre-spike membranes h_seq and the membranes after reset
 * v_seq [T, n] where not NULL; v_last [n] holds v_0 on entry and v_T on return. a and the
 * threshold are scalars, or per column [n] where a_c and thr_c are given (with LERP_EACH for
 * a lerp weight per column). Returns 0, or -1 for an unknown charge or reset code. */
int SUFFIX(nk_lif_forward)(int charge, int reset, const REAL *u, REAL *v_last, REAL *s,
                           REAL *h_seq, REAL *v_seq, int64_t nt, int64_t n, int64_t lo,
                           int64_t hi, double a, const REAL *a_c, double threshold,
                           const REAL *thr_c, double v_reset) {
  switch (charge * 4 + reset) {
    RESETS(LERP_SMALL) RESETS(LERP_LARGE) RESETS(ADD_SCALED) RESETS(ADD) RESETS(LERP_EACH)
  }
  return -1;
}
#undef RESETS
#undef OUTPUTS

/* The surrogate derivative g of z = h - threshold (see the enum above): computed, or read from
 * *given (GIVEN); rounded as surrogate.py's ATen ops round it. */
static inline __attribute__((always_inline)) REAL SUFFIX(surrogate_grad)(
    const int surrogate, const REAL z, const REAL c1, const REAL c2, const REAL *given) {
  if (surrogate == FAST_SIGMOID) { /* 1 / (c1 |z| + 1)^2: add(alpha=), pow(-2) */
    const REAL r = FMA(c1, FABS(z), 1);
    return 1 / (r * r);
  }
  if (surrogate == ATAN) { /* 1 / (c1 + c2 z^2): addcmul, reciprocal */
    return 1 / FMA(c2 * z, z, c1);
  }
  return *given;
}

/* The backward through time for t = T-1 down to 0 (see multistep.py):
 *   coef_t = A_t + B_t * g_t (zero: A = h < threshold, B = v_reset - h; subtract: A = 1,
 *            B = -threshold; B = 0 with detach; coef = 1 for "none" or subtract + detach)
 *   dh_t   = g_s_t * g_t + g_v_t * coef_t + decay * coef_t * dh_{t+1}
 * d holds g on entry (GIVEN) or nothing, and dh * scale on return (scale 1: dh itself; the
 * drive's weight w: dL/du); g_s and g_v may be NULL (zero). The threshold, decay and scale are
 * scalars, or per column [n] where thr_c, decay_c and scale_c are given. Each op is rounded as
 * the ATen ops of surrogate.py and _FusedLIF.backward round it. */
static inline __attribute__((always_inline)) void SUFFIX(back_row)(
    const int surrogate, const int reset, const int detach, const int has_g_s,
    const int has_g_v, const int cols, REAL *restrict d, const REAL *restrict h,
    const REAL *restrict g_s, const REAL *restrict g_v, REAL *restrict next, const int64_t m,
    const REAL *restrict thr_c, const REAL thr_s, const REAL v_reset,
    const REAL *restrict decay_c, const REAL decay_s, const REAL c1, const REAL c2,
    const REAL *restrict scale_c, const REAL scale_s) {
  const int has_coef = reset == ZERO || reset == ZERO_TO || (reset == SUBTRACT && !detach);
#pragma GCC ivdep /* distinct tensors: without it, too many run-time alias checks to vectorise */
  for (int64_t i = 0; i < m; i++) {
    const REAL threshold = cols ? thr_c[i] : thr_s, decay = cols ? decay_c[i] : decay_s;
    const REAL scale = cols ? scale_c[i] : scale_s;
    const REAL x = h[i];
    const REAL g = SUFFIX(surrogate_grad)(surrogate, x - threshold, c1, c2, d + i);
    REAL coef = 1;
    if (reset == ZERO || reset == ZERO_TO) {
      coef = x < threshold ? 1 : 0;
      if (!detach) {
        if (reset == ZERO_TO) coef = FMA(g, v_reset, coef);
        coef = FMA(-x, g, coef);
      }
    } else if (reset == SUBTRACT && !detach) {
      coef = 1 - g * threshold;
    }
    REAL dh = has_g_s ? g_s[i] * g : 0;
    if (has_g_v) dh = has_coef ? FMA(g_v[i], coef, dh) : dh + g_v[i];
    dh = FMA(has_coef ? decay * coef : decay, next[i], dh);
    d[i] = dh * scale;
    next[i] = dh;
  }
}

/* Whether g_s and g_v are given is fixed per loop: tested per element, GCC turned a missing
 * g_v into AVX-512 masked loads from NULL, which an AMD EPYC served about 20x slower. With the
 * threshold, decay or scale per column (cols), one loop reads both, a missing one as a row of
 * zeros (the same values up to the sign of a zero), which keeps the build time down. */
#define ROW(GS, GV, C, S, V)                                                                 \
  SUFFIX(back_row)(surrogate, reset, detach, GS, GV, C, d + row, h + row, S, V, next, m, thr, \
                   thr_s, v_reset, dec, decay_s, c1, c2, sc, scale_s)

static inline __attribute__((always_inline)) void SUFFIX(back)(
    const int surrogate, const int reset, const int detach, REAL *restrict d,
    const REAL *restrict h, const REAL *restrict g_s, const REAL *restrict g_v,
    const int64_t nt, const int64_t n, const int64_t lo, const int64_t hi, const REAL thr_s,
    const REAL *thr_c, const REAL v_reset, const REAL decay_s, const REAL *decay_c,
    const REAL c1, const REAL c2, const REAL scale_s, const REAL *scale_c) {
  REAL next[LOCAL], thr_l[LOCAL], decay_l[LOCAL], scale_l[LOCAL], zeros[LOCAL];
  const int cols = thr_c || decay_c || scale_c;
  if (cols) {
    SUFFIX(fill)(thr_l, thr_c, thr_s);
    SUFFIX(fill)(decay_l, decay_c, decay_s);
    SUFFIX(fill)(scale_l, scale_c, scale_s);
    SUFFIX(fill)(zeros, 0, 0);
  }
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *thr = thr_c ? thr_c + b : thr_l, *dec = decay_c ? decay_c + b : decay_l;
    const REAL *sc = scale_c ? scale_c + b : scale_l;
    for (int64_t i = 0; i < m; i++) next[i] = 0;
    for (int64_t t = nt - 1; t >= 0; t--) {
      const int64_t row = t * n + b;
      const REAL *s_row = g_s ? g_s + row : zeros, *v_row = g_v ? g_v + row : zeros;
      if (cols) ROW(1, 1, 1, s_row, v_row);
      else if (g_s && g_v) ROW(1, 1, 0, s_row, v_row);
      else if (g_s) ROW(1, 0, 0, s_row, 0);
      else if (g_v) ROW(0, 1, 0, 0, v_row);
      else ROW(0, 0, 0, 0, 0);
    }
  }
}
#undef ROW

#define DETACH(S, R, D)                                                                    \
  case BACKWARD_CASE(S, R, D):                                                             \
    SUFFIX(back)(S, R, D, d, h, g_s, g_v, nt, n, lo, hi, threshold, thr_c, v_reset, decay, \
                 decay_c, c1, c2, scale, scale_c);                                         \
    return 0;
#define RESETS(S)                                                                          \
  DETACH(S, SUBTRACT, 0) DETACH(S, SUBTRACT, 1) DETACH(S, ZERO, 0) DETACH(S, ZERO, 1)      \
  DETACH(S, ZERO_TO, 0) DETACH(S, ZERO_TO, 1) DETACH(S, NONE, 0)

/* Returns 0, or -1 for an unknown surrogate or reset code. */
int SUFFIX(nk_lif_backward)(REAL *d, const REAL *h, const REAL *g_s, const REAL *g_v,
                            int64_t nt, int64_t n, int64_t lo, int64_t hi, int surrogate,
                            int reset, int detach, double threshold, const REAL *thr_c,
                            double v_reset, double decay, const REAL *decay_c, double c1,
                            double c2, double scale, const REAL *scale_c) {
  switch (backward_case(surrogate, reset, detach)) {
    RESETS(GIVEN) RESETS(FAST_SIGMOID) RESETS(ATAN)
  }
  return -1;
}
#undef RESETS
#undef DETACH

/* ALIF's forward: the LIF step with the adapted threshold theta = beta * a + threshold (two
 * ops, as ATen rounds them) and the trace a <- a + (s - a) / tau_adapt. The leak's weight w,
 * the threshold, beta and tau_adapt are scalars, or (cols, where any of w_c, thr_c, beta_c,
 * tau_c is given) read per column [n]. v_last and a_last hold v_0 and a_0 on entry, v_T and
 * a_T on return; h_seq and theta_seq may be NULL. */
static inline __attribute__((always_inline)) void SUFFIX(alif_step)(
    const int charge, const int reset, const int cols, const REAL *restrict u,
    REAL *restrict v, REAL *restrict a, REAL *restrict s, REAL *restrict v_out,
    REAL *restrict h_out, REAL *restrict theta_out, const REAL *restrict w_c,
    const REAL *restrict thr_c, const REAL *restrict beta_c, const REAL *restrict tau_c,
    const int64_t m, const REAL w_s, const REAL thr_s, const REAL beta_s, const REAL tau_s,
    const REAL v_reset) {
  for (int64_t i = 0; i < m; i++) {
    const REAL w = cols ? w_c[i] : w_s, threshold = cols ? thr_c[i] : thr_s;
    const REAL beta = cols ? beta_c[i] : beta_s, tau_adapt = cols ? tau_c[i] : tau_s;
    const REAL h = SUFFIX(charged)(charge, w, u[i], v[i]);
    const REAL theta = beta * a[i] + threshold;
    const REAL spike = h >= theta ? 1 : 0;
    const REAL after = SUFFIX(after_reset)(reset, h, spike, theta, v_reset);
    s[i] = spike;
    v_out[i] = after;
    h_out[i] = h;
    theta_out[i] = theta;
    v[i] = after;
    a[i] = a[i] + (spike - a[i]) / tau_adapt;
  }
}

static inline __attribute__((always_inline)) void SUFFIX(alif_run)(
    const int charge, const int reset, const REAL *restrict u, REAL *restrict v_last,
    REAL *restrict a_last, REAL *restrict s, REAL *restrict v_seq, REAL *restrict h_seq,
    REAL *restrict theta_seq, const int64_t nt, const int64_t n, const int64_t lo,
    const int64_t hi, const REAL w_s, const REAL *w_c, const REAL thr_s, const REAL *thr_c,
    const REAL beta_s, const REAL *beta_c, const REAL tau_s, const REAL *tau_c,
    const REAL v_reset) {
  REAL v[LOCAL], a[LOCAL], h_unkept[LOCAL], theta_unkept[LOCAL];
  REAL w_l[LOCAL], thr_l[LOCAL], beta_l[LOCAL], tau_l[LOCAL];
  const int cols = w_c || thr_c || beta_c || tau_c;
  if (cols) {
    SUFFIX(fill)(w_l, w_c, w_s);
    SUFFIX(fill)(thr_l, thr_c, thr_s);
    SUFFIX(fill)(beta_l, beta_c, beta_s);
    SUFFIX(fill)(tau_l, tau_c, tau_s);
  }
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *w = w_c ? w_c + b : w_l, *thr = thr_c ? thr_c + b : thr_l;
    const REAL *beta = beta_c ? beta_c + b : beta_l, *tau = tau_c ? tau_c + b : tau_l;
    memcpy(v, v_last + b, (size_t)m * sizeof(REAL));
    memcpy(a, a_last + b, (size_t)m * sizeof(REAL));
    for (int64_t t = 0; t < nt; t++) {
      const int64_t row = t * n + b;
      REAL *h_out = h_seq ? h_seq + row : h_unkept;
      REAL *theta_out = theta_seq ? theta_seq + row : theta_unkept;
#define ALIF_STEP(C)                                                                          \
  SUFFIX(alif_step)(charge, reset, C, u + row, v, a, s + row, v_seq + row, h_out, theta_out, \
                    w, thr, beta, tau, m, w_s, thr_s, beta_s, tau_s, v_reset)
      if (cols) ALIF_STEP(1);
      else ALIF_STEP(0);
#undef ALIF_STEP
    }
    memcpy(v_last + b, v, (size_t)m * sizeof(REAL));
    memcpy(a_last + b, a, (size_t)m * sizeof(REAL));
  }
}

#define OUTPUTS(C, R)                                                                       \
  case C * 4 + R:                                                                           \
    SUFFIX(alif_run)(C, R, u, v_last, a_last, s, v_seq, h_seq, theta_seq, nt, n, lo, hi, w, \
                     w_c, threshold, thr_c, beta, beta_c, tau_adapt, tau_c, v_reset);      \
    return 0;
#define RESETS(C) OUTPUTS(C, SUBTRACT) OUTPUTS(C, ZERO) OUTPUTS(C, ZERO_TO) OUTPUTS(C, NONE)

/* Returns 0, or -1 for an unknown charge (IF has no ALIF) or reset code. */
int SUFFIX(nk_alif_forward)(int charge, int reset, const REAL *u, REAL *v_last, REAL *a_last,
                            REAL *s, REAL *v_seq, REAL *h_seq, REAL *theta_seq, int64_t nt,
                            int64_t n, int64_t lo, int64_t hi, double w, const REAL *w_c,
                            double threshold, const REAL *thr_c, double beta,
                            const REAL *beta_c, double tau_adapt, const REAL *tau_c,
                            double v_reset) {
  switch (charge * 4 + reset) {
    RESETS(LERP_SMALL) RESETS(LERP_LARGE) RESETS(ADD_SCALED) RESETS(LERP_EACH)
  }
  return -1;
}
#undef RESETS
#undef OUTPUTS

/* ALIF's backward through time (multistep._alif_through_time), in place over d, which holds
 * the surrogate derivatives g on entry (GIVEN; else g of z = h - theta is computed as in the
 * LIF backward) and dh * scale on return. Per column and step t = T-1 .. 0, with
 * s = h >= theta, the time-parallel factors P = g_s g, Q = g / tau_adapt, the reset's
 * R = g dR/ds (subtract: -(g theta), zero: -((h - v_reset) g); 0 with detach),
 * A = dR/dh (zero: 1 - s, else 1) and C = dR/dtheta (subtract: -s, else 0):
 *   dv += g_v[t];  dz = P + Q da + R dv;  dtheta = C dv - dz;  dh = dz + A dv;
 *   da = da * keep_a + dtheta * beta;  dv = dh * decay
 * tau_adapt, keep_a = 1 - 1 / tau_adapt (as ATen rounds it), beta, decay and scale: scalars,
 * or (cols, where any of tau_c, keep_c, beta_c, decay_c, scale_c is given) per column [n].
 * dv [n] and da [n] carry the state gradients in (zero and dL/da_T) and out (of v_0, a_0). */
static inline __attribute__((always_inline)) void SUFFIX(alif_back_row)(
    const int surrogate, const int reset, const int detach, const int has_g_s,
    const int has_g_v, const int cols, REAL *restrict d, const REAL *restrict h,
    const REAL *restrict theta, const REAL *restrict g_s, const REAL *restrict g_v,
    REAL *restrict dv, REAL *restrict da, const int64_t m, const REAL v_reset,
    const REAL *restrict tau_c, const REAL *restrict keep_c, const REAL *restrict beta_c,
    const REAL *restrict decay_c, const REAL *restrict scale_c, const REAL tau_s,
    const REAL keep_s, const REAL beta_s, const REAL decay_s, const REAL c1, const REAL c2,
    const REAL scale_s) {
#pragma GCC ivdep /* distinct tensors */
  for (int64_t i = 0; i < m; i++) {
    const REAL tau_adapt = cols ? tau_c[i] : tau_s, keep_a = cols ? keep_c[i] : keep_s;
    const REAL beta = cols ? beta_c[i] : beta_s, decay = cols ? decay_c[i] : decay_s;
    const REAL scale = cols ? scale_c[i] : scale_s;
    const REAL g = SUFFIX(surrogate_grad)(surrogate, h[i] - theta[i], c1, c2, d + i);
    const REAL spike = h[i] >= theta[i] ? 1 : 0;
    const REAL v_grad = has_g_v ? dv[i] + g_v[i] : dv[i];
    REAL dz = FMA(g / tau_adapt, da[i], has_g_s ? g_s[i] * g : 0);
    if (!detach && reset == SUBTRACT) dz = FMA(-(g * theta[i]), v_grad, dz);
    if (!detach && reset == ZERO) dz = FMA(-((h[i] - v_reset) * g), v_grad, dz);
    const REAL dtheta = reset == SUBTRACT ? FMA(-spike, v_grad, -dz) : -dz;
    const REAL dh = reset == ZERO ? FMA(1 - spike, v_grad, dz) : dz + v_grad;
    da[i] = da[i] * keep_a + dtheta * beta;
    dv[i] = dh * decay;
    d[i] = dh * scale;
  }
}

/* g_s and g_v given or not is fixed per loop, and cols reads both (see ROW above). */
#define ALIF_ROW(GS, GV, C, S, V)                                                            \
  SUFFIX(alif_back_row)(surrogate, reset, detach, GS, GV, C, d + row, h + row, theta + row, \
                        S, V, dv, da, m, v_reset, tau, keep, beta, dec, sc, tau_s, keep_s, \
                        beta_s, decay_s, c1, c2, scale_s)

static inline __attribute__((always_inline)) void SUFFIX(alif_back)(
    const int surrogate, const int reset, const int detach, REAL *restrict d,
    const REAL *restrict h, const REAL *restrict theta, const REAL *restrict g_s,
    const REAL *restrict g_v, REAL *restrict dv_io, REAL *restrict da_io, const int64_t nt,
    const int64_t n, const int64_t lo, const int64_t hi, const REAL v_reset, const REAL tau_s,
    const REAL *tau_c, const REAL keep_s, const REAL *keep_c, const REAL beta_s,
    const REAL *beta_c, const REAL decay_s, const REAL *decay_c, const REAL c1, const REAL c2,
    const REAL scale_s, const REAL *scale_c) {
  REAL dv[LOCAL], da[LOCAL], tau_l[LOCAL], keep_l[LOCAL], beta_l[LOCAL], decay_l[LOCAL];
  REAL scale_l[LOCAL], zeros[LOCAL];
  const int cols = tau_c || keep_c || beta_c || decay_c || scale_c;
  if (cols) {
    SUFFIX(fill)(tau_l, tau_c, tau_s);
    SUFFIX(fill)(keep_l, keep_c, keep_s);
    SUFFIX(fill)(beta_l, beta_c, beta_s);
    SUFFIX(fill)(decay_l, decay_c, decay_s);
    SUFFIX(fill)(scale_l, scale_c, scale_s);
    SUFFIX(fill)(zeros, 0, 0);
  }
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *tau = tau_c ? tau_c + b : tau_l, *keep = keep_c ? keep_c + b : keep_l;
    const REAL *beta = beta_c ? beta_c + b : beta_l, *dec = decay_c ? decay_c + b : decay_l;
    const REAL *sc = scale_c ? scale_c + b : scale_l;
    memcpy(dv, dv_io + b, (size_t)m * sizeof(REAL));
    memcpy(da, da_io + b, (size_t)m * sizeof(REAL));
    for (int64_t t = nt - 1; t >= 0; t--) {
      const int64_t row = t * n + b;
      const REAL *s_row = g_s ? g_s + row : zeros, *v_row = g_v ? g_v + row : zeros;
      if (cols) ALIF_ROW(1, 1, 1, s_row, v_row);
      else if (g_s && g_v) ALIF_ROW(1, 1, 0, s_row, v_row);
      else if (g_s) ALIF_ROW(1, 0, 0, s_row, 0);
      else if (g_v) ALIF_ROW(0, 1, 0, 0, v_row);
      else ALIF_ROW(0, 0, 0, 0, 0);
    }
    memcpy(dv_io + b, dv, (size_t)m * sizeof(REAL));
    memcpy(da_io + b, da, (size_t)m * sizeof(REAL));
  }
}
#undef ALIF_ROW

#define DETACH(S, R, D)                                                                     \
  case BACKWARD_CASE(S, R, D):                                                              \
    SUFFIX(alif_back)(S, R, D, d, h, theta, g_s, g_v, dv, da, nt, n, lo, hi, v_reset,      \
                      tau_adapt, tau_c, keep_a, keep_c, beta, beta_c, decay, decay_c, c1, c2, \
                      scale, scale_c);                                                      \
    return 0;
#define RESETS(S)                                                                           \
  DETACH(S, SUBTRACT, 0) DETACH(S, SUBTRACT, 1) DETACH(S, ZERO, 0) DETACH(S, ZERO, 1)       \
  DETACH(S, NONE, 0)

/* Returns 0, or -1 for an unknown surrogate or reset code (zero covers v_reset != 0 here). */
int SUFFIX(nk_alif_backward)(REAL *d, const REAL *h, const REAL *theta, const REAL *g_s,
                             const REAL *g_v, REAL *dv, REAL *da, int64_t nt, int64_t n,
                             int64_t lo, int64_t hi, int surrogate, int reset, int detach,
                             double v_reset, double tau_adapt, const REAL *tau_c,
                             double keep_a, const REAL *keep_c, double beta,
                             const REAL *beta_c, double decay, const REAL *decay_c, double c1,
                             double c2, double scale, const REAL *scale_c) {
  switch (backward_case(surrogate, reset, detach)) {
    RESETS(GIVEN) RESETS(FAST_SIGMOID) RESETS(ATAN)
  }
  return -1;
}
#undef RESETS
#undef DETACH

/* The gradient of the leak's parameter as a sum over time per column, in double: with
 * v_{t-1} the membrane after the previous step's reset (v_0 [n] for t = 0; recomputed from h
 * against the threshold, the scalar thr_s or (cols) per column thr_c, or ALIF's theta [T, n]
 * where not NULL, as the forward resets it) and dh = d, g += dh_t * (u_t - v_{t-1}) where u
 * is not NULL (the lerp's dh/dw), else g += dh_t * v_{t-1} (dh/dlam of u + lam v); each
 * product rounded as ATen's dh * (u - v_prev) or dh * v_prev, then added in t order. g [n]
 * holds zeros on entry. */
static inline __attribute__((always_inline)) void SUFFIX(leak)(
    const int reset, const int has_u, const int has_theta, const int cols,
    const REAL *restrict d, const REAL *restrict h, const REAL *restrict theta,
    const REAL *restrict u, const REAL *restrict v0, double *restrict g, const int64_t nt,
    const int64_t n, const int64_t lo, const int64_t hi, const REAL thr_s, const REAL *thr_c,
    const REAL v_reset) {
  REAL v[LOCAL];
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *restrict threshold = cols ? thr_c + b : 0;
    memcpy(v, v0 + b, (size_t)m * sizeof(REAL));
    for (int64_t t = 0; t < nt; t++) {
      const int64_t row = t * n + b;
#pragma GCC ivdep /* distinct tensors */
      for (int64_t i = 0; i < m; i++) {
        const REAL dh = d[row + i], p = v[i], x = h[row + i];
        g[b + i] += (double)(has_u ? dh * (u[row + i] - p) : dh * p);
        const REAL thr = has_theta ? theta[row + i] : cols ? threshold[i] : thr_s;
        v[i] = SUFFIX(after_reset)(reset, x, x >= thr ? 1 : 0, thr, v_reset);
      }
    }
  }
}

/* A threshold per column (cols) is a loop of its own: a scalar one reads one stream fewer. */
#define LEAK_LOOP(R, U, TH, C) \
  SUFFIX(leak)(R, U, TH, C, d, h, theta, u, v0, g, nt, n, lo, hi, threshold, thr_c, v_reset)
#define LEAK(R, U, TH)                                   \
  case ((R) * 2 + (U)) * 2 + (TH):                       \
    if (!(TH) && thr_c) LEAK_LOOP(R, U, TH, !(TH));      \
    else LEAK_LOOP(R, U, TH, 0);                         \
    return 0;
#define RESETS(U, TH) LEAK(SUBTRACT, U, TH) LEAK(ZERO, U, TH) LEAK(ZERO_TO, U, TH) LEAK(NONE, U, TH)

/* Returns 0, or -1 for an unknown reset code. */
int SUFFIX(nk_leak_sums)(const REAL *d, const REAL *h, const REAL *theta, const REAL *u,
                          const REAL *v0, double *g, int64_t nt, int64_t n, int64_t lo,
                          int64_t hi, int reset, double threshold, const REAL *thr_c,
                          double v_reset) {
  if (reset < 0 || reset > NONE) return -1;
  switch ((reset * 2 + (u != 0)) * 2 + (theta != 0)) {
    RESETS(0, 0) RESETS(0, 1) RESETS(1, 0) RESETS(1, 1)
  }
  return -1;
}
#undef RESETS
#undef LEAK
#undef LEAK_LOOP

/* ALIF's adaptation parameters' gradients as sums over time per column, in double. With
 * dh = d, the spikes s_t = h_t >= theta_t, the membrane's total gradient dv_t = g_v_t + dh_{t+1}
 * * decay (no g_v: 0; no dh_T), dtheta_t = dv_t * (1 - s_t) - dh_t (dv_t - dh_t for "none"),
 * the trace a_{t-1} (a0 [n], then a_t = (a - a / tau) + s_t / tau) and its derivative in
 * 1 / tau with the spikes held, e_{t-1} (0, then e_t = (e - e / tau) + (s_t - a_{t-1})):
 *   out[0] += dtheta_t, out[1] += dtheta_t * a_{t-1}, out[2] += dtheta_t * e_{t-1},
 * each product rounded in REAL, added in t order; out[3] = e_{T-1}. tau and decay: scalars,
 * or per column [n] where tau_c or decay_c is given; out [4, n] holds zeros. */
static inline __attribute__((always_inline)) void SUFFIX(adapt_step)(
    const int no_reset, const int has_g_v, const int last, const int cols,
    const REAL *restrict d, const REAL *restrict d_next, const REAL *restrict h,
    const REAL *restrict theta, const REAL *restrict g_v, REAL *restrict a, REAL *restrict e,
    double *restrict s_thr, double *restrict s_beta, double *restrict s_tau, const int64_t m,
    const REAL *restrict tau_c, const REAL *restrict decay_c, const REAL tau_s,
    const REAL decay_s) {
  for (int64_t i = 0; i < m; i++) {
    const REAL tau = cols ? tau_c[i] : tau_s, decay = cols ? decay_c[i] : decay_s;
    const REAL s = h[i] >= theta[i] ? 1 : 0, p = a[i], q = e[i];
    REAL dv = has_g_v ? g_v[i] : 0;
    if (!last) dv = dv + d_next[i] * decay;
    const REAL dtheta = (no_reset ? dv : dv * (1 - s)) - d[i];
    s_thr[i] += (double)dtheta;
    s_beta[i] += (double)(dtheta * p);
    s_tau[i] += (double)(dtheta * q);
    e[i] = (q - q / tau) + (s - p);
    a[i] = (p - p / tau) + s / tau;
  }
}

/* One vectorised loop per (reset, g_v given, last step, parameters per column). */
static inline __attribute__((always_inline)) void SUFFIX(adapt)(
    const int no_reset, const int has_g_v, const int cols, const REAL *restrict d,
    const REAL *restrict h, const REAL *restrict theta, const REAL *restrict g_v,
    const REAL *restrict a0, double *restrict out, const int64_t nt, const int64_t n,
    const int64_t lo, const int64_t hi, const REAL tau_s, const REAL *tau_c,
    const REAL decay_s, const REAL *decay_c) {
  REAL a[LOCAL], e[LOCAL], tau_l[LOCAL], decay_l[LOCAL];
  if (cols) {
    SUFFIX(fill)(tau_l, tau_c, tau_s);
    SUFFIX(fill)(decay_l, decay_c, decay_s);
  }
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *tau = tau_c ? tau_c + b : tau_l, *decay = decay_c ? decay_c + b : decay_l;
    memcpy(a, a0 + b, (size_t)m * sizeof(REAL));
    for (int64_t i = 0; i < m; i++) e[i] = 0;
    for (int64_t t = 0; t < nt; t++) {
      const int64_t row = t * n + b;
      const REAL *gv = has_g_v ? g_v + row : 0;
      if (t + 1 < nt)
        SUFFIX(adapt_step)(no_reset, has_g_v, 0, cols, d + row, d + row + n, h + row,
                           theta + row, gv, a, e, out + b, out + n + b, out + 2 * n + b, m, tau,
                           decay, tau_s, decay_s);
      else
        SUFFIX(adapt_step)(no_reset, has_g_v, 1, cols, d + row, 0, h + row, theta + row, gv, a,
                           e, out + b, out + n + b, out + 2 * n + b, m, tau, decay, tau_s,
                           decay_s);
    }
    for (int64_t i = 0; i < m; i++) out[3 * n + b + i] = (double)e[i];
  }
}

void SUFFIX(nk_alif_adapt_sums)(const REAL *d, const REAL *h, const REAL *theta,
                                const REAL *g_v, const REAL *a0, double *out, int64_t nt,
                                int64_t n, int64_t lo, int64_t hi, int no_reset, double tau,
                                const REAL *tau_c, double decay, const REAL *decay_c) {
#define ADAPT(R, G, C) \
  SUFFIX(adapt)(R, G, C, d, h, theta, g_v, a0, out, nt, n, lo, hi, tau, tau_c, decay, decay_c)
#define ADAPT_GV(R, C) \
  if (g_v) ADAPT(R, 1, C); else ADAPT(R, 0, C);
  const int cols = tau_c || decay_c;
  if (no_reset) {
    if (cols) { ADAPT_GV(1, 1) } else { ADAPT_GV(1, 0) }
  } else {
    if (cols) { ADAPT_GV(0, 1) } else { ADAPT_GV(0, 0) }
  }
#undef ADAPT_GV
#undef ADAPT
}

/* CuBa-LIF's synaptic current, i_t = (i_{t-1} - i_{t-1} / tau) + x_t, into out [T, n] from
 * i0 [n]; and the reverse linear scan of its backward (and of a LIF backward without reset
 * partials), in place over d [T, n]: d[t] += lam * d[t+1] as add(alpha=lam). */
void SUFFIX(nk_current_forward)(const REAL *x, const REAL *i0, REAL *out, int64_t nt,
                                int64_t n, int64_t lo, int64_t hi, double tau) {
  const REAL k = (REAL)tau;
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    const REAL *restrict prev = i0 + b;
    for (int64_t t = 0; t < nt; t++) {
      const REAL *restrict xt = x + t * n + b;
      REAL *restrict it = out + t * n + b;
      for (int64_t i = 0; i < m; i++) it[i] = (prev[i] - prev[i] / k) + xt[i];
      prev = it;
    }
  }
}

void SUFFIX(nk_scan_back)(REAL *d, int64_t nt, int64_t n, int64_t lo, int64_t hi,
                                 double lam) {
  const REAL k = (REAL)lam;
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    for (int64_t t = nt - 2; t >= 0; t--) {
      REAL *restrict now = d + t * n + b;
      const REAL *restrict next = now + n;
      for (int64_t i = 0; i < m; i++) now[i] = FMA(next[i], k, now[i]);
    }
  }
}

/* The event-driven linear layer, y = x W^T + b for a binary x [rows, nk] (contiguous): y's row
 * r is b plus the sum of W^T's rows k at x[r, k] = 1, added in the order of k; the weight
 * gradient W^T's row k is likewise the sum of the output gradient's rows r at x[r, k] = 1.
 * The summed rows come packed into column chunks (nk_spike_pack: [ceil(nm / CH), n, CH], zero
 * past nm), so that one chunk's rows are contiguous whatever nm is (a power-of-two row stride
 * would put every row in the same cache sets), and each output chunk is summed in registers. */
typedef REAL SUFFIX(vec) __attribute__((vector_size(32), aligned(sizeof(REAL))));
#define VEC SUFFIX(vec)
#define LANES ((int64_t)(32 / sizeof(REAL)))
#define CHUNK (SPIKE_NV * LANES)

/* CH: the columns of one chunk (the packed arrays' last dimension) */
int64_t SUFFIX(nk_spike_chunk)(void) { return CHUNK; }

/* wp[c][k][j] = src[k * sk + (c * CH + j) * sj]: rows k of n, columns j of nm; a transposed
 * source (sk = 1) in tiles of 16 rows, one cache line of each source row at a time */
void SUFFIX(nk_spike_pack)(const REAL *src, int64_t sk, int64_t sj, REAL *wp, int64_t n,
                           int64_t nm) {
  for (int64_t j0 = 0; j0 < nm; j0 += CHUNK) {
    REAL *slab = wp + (j0 / CHUNK) * n * CHUNK;
    const int64_t width = nm - j0 < CHUNK ? nm - j0 : CHUNK;
    if (sj == 1) {
      for (int64_t k = 0; k < n; k++) {
        memcpy(slab + k * CHUNK, src + k * sk + j0, (size_t)width * sizeof(REAL));
        for (int64_t j = width; j < CHUNK; j++) slab[k * CHUNK + j] = 0;
      }
      continue;
    }
    for (int64_t k0 = 0; k0 < n; k0 += 16) {
      const int64_t k1 = n - k0 < 16 ? n : k0 + 16;
      for (int64_t j = 0; j < CHUNK; j++)
        for (int64_t k = k0; k < k1; k++)
          slab[k * CHUNK + j] = j < width ? src[k * sk + (j0 + j) * sj] : 0;
    }
  }
}

/* acc += the packed rows list[from .. to) of one chunk's slab */
static inline __attribute__((always_inline)) void SUFFIX(add_rows)(
    VEC *acc, const REAL *slab, const int32_t *list, const int64_t from, const int64_t to) {
  for (int64_t a = from; a < to; a++) {
    const REAL *row = slab + (int64_t)list[a] * CHUNK;
    for (int v = 0; v < SPIKE_NV; v++) {
      VEC t;
      memcpy(&t, row + v * LANES, sizeof(VEC));
      acc[v] += t;
    }
  }
}

/* out[i * nm + :] = init + the sum of packed rows list[start[i] .. start[i + 1]), i < rows */
static void SUFFIX(sum_rows)(const int64_t *start, const int32_t *list, int64_t rows,
                             const REAL *wp, int64_t n, const REAL *init, REAL *out,
                             int64_t nm) {
  for (int64_t j0 = 0; j0 < nm; j0 += CHUNK) {
    const REAL *slab = wp + (j0 / CHUNK) * n * CHUNK;
    const int64_t width = nm - j0 < CHUNK ? nm - j0 : CHUNK;
    REAL first[CHUNK] = {0};
    if (init) memcpy(first, init + j0, (size_t)width * sizeof(REAL));
    for (int64_t i = 0; i < rows; i++) {
      VEC acc[SPIKE_NV];
      memcpy(acc, first, sizeof(acc));
      SUFFIX(add_rows)(acc, slab, list, start[i], start[i + 1]);
      memcpy(out + i * nm + j0, acc, (size_t)width * sizeof(REAL));
    }
  }
}

/* The spikes of x's rows [lo, hi) (contiguous [rows, nk]): count[r] = the number of ones;
 * 1 on a value other than 0 or 1 (-0 counts as 0) */
int SUFFIX(nk_spike_count)(const REAL *x, int64_t *count, int64_t nk, int64_t lo, int64_t hi) {
  int other = 0;
  for (int64_t r = lo; r < hi; r++) {
    const REAL *xr = x + r * nk;
    int64_t n = 0;
    for (int64_t k = 0; k < nk; k++) {
      n += xr[k] != 0;
      other |= (xr[k] != 0) & (xr[k] != 1);
    }
    count[r] = n;
  }
  return other;
}

/* y's rows [lo, hi) from x, W packed [.., nk, CH] and b (or NULL), writing x's spikes by row
 * on the way: the inputs k of row r at cols[start[r] .. start[r + 1]) (start: the prefix sums
 * of nk_spike_count), in increasing order; 2 when out of memory */
int SUFFIX(nk_spike_linear)(const REAL *x, const int64_t *start, int32_t *cols, const REAL *wp,
                            const REAL *bias, REAL *out, int64_t nk, int64_t nm, int64_t lo,
                            int64_t hi) {
  int32_t *active = malloc((size_t)(nk + 1) * sizeof(int32_t));
  if (!active) return 2;
  for (int64_t r0 = lo; r0 < hi; r0 += SPIKE_ROWS) {
    const int64_t rows = hi - r0 < SPIKE_ROWS ? hi - r0 : SPIKE_ROWS;
    for (int64_t r = r0; r < r0 + rows; r++) {
      const REAL *xr = x + r * nk;
      int64_t n = 0;
      for (int64_t k = 0; k < nk; k++) { /* branch-free: write, advance past the spikes */
        active[n] = (int32_t)k;
        n += xr[k] != 0;
      }
      memcpy(cols + start[r], active, (size_t)n * sizeof(int32_t));
    }
    SUFFIX(sum_rows)(start + r0, cols, rows, wp, nk, bias, out + r0 * nm, nm);
  }
  free(active);
  return 0;
}

/* The spikes by input from the spikes by row (start [nr + 1], cols) of nk_spike_linear: the
 * rows r that spiked into input k at rows[cstart[k] .. cstart[k + 1]), in increasing order
 * (cstart [nk + 1]) */
void SUFFIX(nk_spike_columns)(const int64_t *start, const int32_t *cols, int64_t nr,
                              int64_t nk, int64_t *cstart, int32_t *rows) {
  for (int64_t k = 0; k <= nk; k++) cstart[k] = 0;
  for (int64_t a = 0; a < start[nr]; a++) cstart[cols[a] + 1]++;
  for (int64_t k = 0; k < nk; k++) cstart[k + 1] += cstart[k];
  for (int64_t r = 0; r < nr; r++) /* cstart[k] walks through input k's list, then is restored */
    for (int64_t a = start[r]; a < start[r + 1]; a++) rows[cstart[cols[a]]++] = (int32_t)r;
  for (int64_t k = nk; k > 0; k--) cstart[k] = cstart[k - 1];
  cstart[0] = 0;
}

/* W^T's gradient rows [lo, hi) (inputs k) from the spikes by input (nk_spike_columns) and the
 * output gradient packed [.., nr, CH]: over blocks of SPIKE_GRAD_ROWS output-gradient rows,
 * whose packed chunk stays in cache while every input's spikes in the block are summed; 2 when
 * out of memory */
int SUFFIX(nk_spike_weight_grad)(const int64_t *start, const int32_t *rows, const REAL *gp,
                                 REAL *out, int64_t nr, int64_t nm, int64_t lo, int64_t hi) {
  const int64_t nk = hi - lo;
  int64_t *bounds = malloc((size_t)(2 * nk + 1) * sizeof(int64_t));
  if (!bounds) return 2;
  int64_t *first = bounds, *last = bounds + nk; /* one input's spikes in the block */
  memcpy(last, start + lo, (size_t)nk * sizeof(int64_t));
  for (int64_t r0 = 0; r0 == 0 || r0 < nr; r0 += SPIKE_GRAD_ROWS) { /* nr = 0: zeros */
    const int64_t r1 = r0 + SPIKE_GRAD_ROWS;
    for (int64_t k = 0; k < nk; k++) {
      int64_t a = first[k] = last[k];
      while (a < start[lo + k + 1] && rows[a] < r1) a++;
      last[k] = a;
    }
    for (int64_t j0 = 0; j0 < nm; j0 += CHUNK) {
      const REAL *slab = gp + (j0 / CHUNK) * nr * CHUNK;
      const int64_t width = nm - j0 < CHUNK ? nm - j0 : CHUNK;
      for (int64_t k = 0; k < nk; k++) {
        REAL *o = out + (lo + k) * nm + j0;
        REAL sums[CHUNK] = {0};
        if (r0 > 0) memcpy(sums, o, (size_t)width * sizeof(REAL));
        VEC acc[SPIKE_NV];
        memcpy(acc, sums, sizeof(acc));
        SUFFIX(add_rows)(acc, slab, rows, first[k], last[k]);
        memcpy(o, acc, (size_t)width * sizeof(REAL));
      }
    }
  }
  free(bounds);
  return 0;
}
#undef CHUNK
#undef LANES
#undef VEC

#endif
