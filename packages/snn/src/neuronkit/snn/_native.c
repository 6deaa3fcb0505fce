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
#include <string.h>

/* charge h = f(u, v): lerp(v, u, a) for |a| < 0.5 and for |a| >= 0.5 (ATen's two branches),
 * u + a * v (add with alpha or addcmul: both one fused multiply-add), u + v. */
enum { LERP_SMALL, LERP_LARGE, ADD_SCALED, ADD };
/* reset after the spike s: h - s * threshold, h - s * h, (h - s * h) + s * v_reset, h. */
enum { SUBTRACT, ZERO, ZERO_TO, NONE };

#define BLOCK 1024 /* columns whose membranes stay in a local array across all T steps */

#define REAL float
#define FMA fmaf
#define SUFFIX(name) name##_f32
#include __FILE__
#undef REAL
#undef FMA
#undef SUFFIX

#define REAL double
#define FMA fma
#define SUFFIX(name) name##_f64
#include __FILE__

#else /* the kernels for one REAL type */

/* charge and reset are compile-time constants after inlining: one vectorised loop each. */
static inline __attribute__((always_inline)) void SUFFIX(run)(
    const int charge, const int reset, const REAL *restrict u, REAL *restrict v_last,
    REAL *restrict s, REAL *restrict h_seq, REAL *restrict v_seq, const int64_t nt,
    const int64_t n, const int64_t lo, const int64_t hi, const REAL a, const REAL threshold,
    const REAL v_reset) {
  const REAL a_minus_1 = a - 1;
  REAL v[BLOCK], h_unkept[BLOCK], v_unkept[BLOCK]; /* where unkept outputs go */
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    memcpy(v, v_last + b, (size_t)m * sizeof(REAL));
    for (int64_t t = 0; t < nt; t++) {
      const int64_t row = t * n + b;
      REAL *restrict h_out = h_seq ? h_seq + row : h_unkept;
      REAL *restrict v_out = v_seq ? v_seq + row : v_unkept;
      for (int64_t i = 0; i < m; i++) {
        const REAL x = u[row + i], p = v[i];
        REAL h;
        switch (charge) {
          case LERP_SMALL: h = FMA(a, x - p, p); break;
          case LERP_LARGE: h = FMA(a_minus_1, x - p, x); break;
          case ADD_SCALED: h = FMA(a, p, x); break;
          default: h = x + p;
        }
        const REAL spike = h >= threshold ? 1 : 0;
        REAL after;
        switch (reset) {
          case SUBTRACT: after = h - spike * threshold; break;
          case ZERO: after = h + (-spike) * h; break;
          case ZERO_TO: after = (h + (-spike) * h) + v_reset * spike; break;
          default: after = h;
        }
        s[row + i] = spike;
        v[i] = after;
        h_out[i] = h;
        v_out[i] = after;
      }
    }
    memcpy(v_last + b, v, (size_t)m * sizeof(REAL));
  }
}

#define OUTPUTS(C, R)                                                                     \
  case C * 4 + R:                                                                         \
    SUFFIX(run)(C, R, u, v_last, s, h_seq, v_seq, nt, n, lo, hi, a, threshold, v_reset);  \
    return 0;
#define RESETS(C) OUTPUTS(C, SUBTRACT) OUTPUTS(C, ZERO) OUTPUTS(C, ZERO_TO) OUTPUTS(C, NONE)

/* The forward: spikes s [T, n]; the pre-spike membranes h_seq and the membranes after reset
 * v_seq [T, n] where not NULL; v_last [n] holds v_0 on entry and v_T on return. Returns 0, or
 * -1 for an unknown charge or reset code. */
int SUFFIX(nk_lif_forward)(int charge, int reset, const REAL *u, REAL *v_last, REAL *s,
                           REAL *h_seq, REAL *v_seq, int64_t nt, int64_t n, int64_t lo,
                           int64_t hi, double a, double threshold, double v_reset) {
  switch (charge * 4 + reset) {
    RESETS(LERP_SMALL) RESETS(LERP_LARGE) RESETS(ADD_SCALED) RESETS(ADD)
  }
  return -1;
}
#undef RESETS
#undef OUTPUTS

/* The backward through time, in place over d, for t = T-1 down to 0 (see multistep.py):
 *   coef_t = A_t + B_t * g_t (zero: A = h < threshold, B = v_reset - h; subtract: A = 1,
 *            B = -threshold; B = 0 with detach; coef = 1 for "none" or subtract + detach)
 *   dh_t   = g_s_t * g_t + g_v_t * coef_t + decay * coef_t * dh_{t+1}
 * d holds the surrogate derivatives g on entry and dh on return; g_s and g_v may be NULL
 * (zero). Each op is rounded as the ATen ops of _FusedLIF.backward round it. */
static inline __attribute__((always_inline)) void SUFFIX(back)(
    const int reset, const int detach, REAL *restrict d, const REAL *restrict h,
    const REAL *restrict g_s, const REAL *restrict g_v, const int64_t nt, const int64_t n,
    const int64_t lo, const int64_t hi, const REAL threshold, const REAL v_reset,
    const REAL decay) {
  const int has_coef = reset == ZERO || (reset == SUBTRACT && !detach);
  REAL next[BLOCK];
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int64_t m = hi - b < BLOCK ? hi - b : BLOCK;
    for (int64_t i = 0; i < m; i++) next[i] = 0;
    for (int64_t t = nt - 1; t >= 0; t--) {
      const int64_t row = t * n + b;
      for (int64_t i = 0; i < m; i++) {
        const REAL g = d[row + i];
        REAL coef = 1;
        if (reset == ZERO) {
          coef = h[row + i] < threshold ? 1 : 0;
          if (!detach) {
            if (v_reset != 0) coef = FMA(g, v_reset, coef);
            coef = FMA(-h[row + i], g, coef);
          }
        } else if (reset == SUBTRACT && !detach) {
          coef = 1 - g * threshold;
        }
        REAL dh = g_s ? g_s[row + i] * g : 0;
        if (g_v) dh = has_coef ? FMA(g_v[row + i], coef, dh) : dh + g_v[row + i];
        dh = FMA(has_coef ? decay * coef : decay, next[i], dh);
        d[row + i] = dh;
        next[i] = dh;
      }
    }
  }
}

#define DETACH(R, D)                                                                    \
  case R * 2 + D:                                                                       \
    SUFFIX(back)(R, D, d, h, g_s, g_v, nt, n, lo, hi, threshold, v_reset, decay);        \
    return 0;

/* Returns 0, or -1 for an unknown reset code (ZERO_TO is ZERO with v_reset != 0). */
int SUFFIX(nk_lif_backward)(REAL *d, const REAL *h, const REAL *g_s, const REAL *g_v,
                            int64_t nt, int64_t n, int64_t lo, int64_t hi, int reset,
                            int detach, double threshold, double v_reset, double decay) {
  switch ((reset == ZERO_TO ? ZERO : reset) * 2 + (detach != 0)) {
    DETACH(SUBTRACT, 0) DETACH(SUBTRACT, 1) DETACH(ZERO, 0) DETACH(ZERO, 1) DETACH(NONE, 0)
    DETACH(NONE, 1)
  }
  return -1;
}
#undef DETACH

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

#endif
